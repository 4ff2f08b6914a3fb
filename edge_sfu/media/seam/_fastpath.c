/*
 * The forwarder's per-copy work, compiled: write an RTP header and payload into a slot of
 * a BatchWriter's arena, insert the transport-wide sequence number, SRTP-protect the slot
 * in place and set its iovec's length, in one call from Python.
 *
 * The pure-Python path (egress.BatchWriter.queue with this module absent or
 * EDGE_SFU_PURE_PYTHON=1) does the same with send.with_transport_sequence and a cffi call
 * to srtp_protect; the two give byte-identical datagrams (tests/unit/edge_sfu/media/
 * test_fastpath.py). Nothing here links against libsrtp: the address of srtp_protect is
 * handed over once (set_protect) from pylibsrtp's own cffi module, so no libsrtp headers
 * or library paths are needed at build time, and the function used is the very one the
 * Python path calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

static protect_fn srtp_protect_ptr = NULL;
static protect_fn srtp_unprotect_ptr = NULL; /* the same signature */

/* set_protect(address): the address of libsrtp's srtp_protect, as an int. */
static PyObject *set_protect(PyObject *module, PyObject *arg) {
    void *address = PyLong_AsVoidPtr(arg);
    if (address == NULL && PyErr_Occurred())
        return NULL;
    srtp_protect_ptr = (protect_fn)address;
    Py_RETURN_NONE;
}

/* set_unprotect(address): the address of libsrtp's srtp_unprotect, as an int. */
static PyObject *set_unprotect(PyObject *module, PyObject *arg) {
    void *address = PyLong_AsVoidPtr(arg);
    if (address == NULL && PyErr_Occurred())
        return NULL;
    srtp_unprotect_ptr = (protect_fn)address;
    Py_RETURN_NONE;
}

/*
 * unprotect(ctx, packet) -> bytes | None (ingest's first step)
 *
 * pylibsrtp's Session.unprotect in one call: the packet (bytes) verified and decrypted
 * by libsrtp under ctx (the address of the session's srtp_t) into a new bytes object;
 * None where libsrtp refuses it (forged, replayed, unknown SSRC, malformed).
 */
static PyObject *unprotect(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "unprotect(ctx: int, packet: bytes)");
        return NULL;
    }
    if (srtp_unprotect_ptr == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_unprotect was not called");
        return NULL;
    }
    void *ctx = PyLong_AsVoidPtr(args[0]);
    if (ctx == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "null SRTP context");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    if (size > INT_MAX)
        Py_RETURN_NONE;
    /* a new object no one else holds yet: libsrtp works on it in place */
    PyObject *out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(args[1]), size);
    if (out == NULL)
        return NULL;
    int length = (int)size;
    if (srtp_unprotect_ptr(ctx, PyBytes_AS_STRING(out), &length) != 0 || length < 0 ||
        length > size) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    if (length != size && _PyBytes_Resize(&out, length) < 0)
        return NULL;
    return out;
}

/*
 * The transport-wide sequence number under ext_id in the RTP packet data (size bytes),
 * or -1: extensions.transport_sequence (RFC 8285's one- and two-byte forms; the element
 * exactly two bytes long; -1 for junk, never an error).
 */
static long find_transport_sequence(const unsigned char *data, Py_ssize_t size, long ext_id) {
    if (size < 16 || !(data[0] & 0x10))
        return -1;
    Py_ssize_t pos = 12 + 4 * (Py_ssize_t)(data[0] & 0x0F);
    if (size < pos + 4)
        return -1;
    unsigned int profile = ((unsigned int)data[pos] << 8) | data[pos + 1];
    Py_ssize_t end = pos + 4 + 4 * (Py_ssize_t)(((unsigned int)data[pos + 2] << 8) | data[pos + 3]);
    if (end > size)
        return -1;
    pos += 4;
    Py_ssize_t start = -1, length = 0;
    if (profile == 0xBEDE) {
        while (pos < end) {
            unsigned int head = data[pos];
            if (head == 0) {
                pos++;
                continue;
            }
            if (head >> 4 == 15)
                return -1;
            length = (Py_ssize_t)(head & 0x0F) + 1;
            if ((long)(head >> 4) == ext_id) {
                if (pos + 1 + length > end)
                    return -1;
                start = pos + 1;
                break;
            }
            pos += 1 + length;
        }
    } else if (profile >> 4 == 0x100) {
        while (pos < end) {
            if (data[pos] == 0) {
                pos++;
                continue;
            }
            if (pos + 2 > end)
                return -1;
            length = data[pos + 1];
            if ((long)data[pos] == ext_id) {
                if (pos + 2 + length > end)
                    return -1;
                start = pos + 2;
                break;
            }
            pos += 2 + length;
        }
    }
    if (start < 0 || length != 2)
        return -1;
    return ((long)data[start] << 8) | data[start + 1];
}

/*
 * ingest(ctx, packet, twcc_id, packet_type) -> (rtp, plain, transport_seq | None) | None
 *
 * What the ingress does first with each SRTP datagram, in one call: unprotect (as
 * unprotect), parse the fixed header (as packets.parse_rtp_light; rtp is
 * packet_type(payload_type, marker, sequence_number, timestamp, ssrc, payload)) and read
 * the transport-wide sequence number under twcc_id (0: none; as
 * extensions.transport_sequence). None where the packet is refused or malformed.
 */
static PyObject *ingest(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[1]) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "ingest(ctx: int, packet: bytes, twcc_id: int, packet_type: type)");
        return NULL;
    }
    long twcc_id = PyLong_AsLong(args[2]);
    if (twcc_id == -1 && PyErr_Occurred())
        return NULL;
    PyObject *pair[2] = {args[0], args[1]};
    PyObject *plain = unprotect(module, pair, 2);
    if (plain == NULL || plain == Py_None)
        return plain;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(plain);
    Py_ssize_t size = PyBytes_GET_SIZE(plain);
    /* packets.parse_rtp_light's checks, in its order */
    Py_ssize_t pos = 0, end = size;
    int ok = size >= 12 && data[0] >> 6 == 2;
    if (ok) {
        pos = 12 + 4 * (Py_ssize_t)(data[0] & 0x0F);
        if (data[0] & 0x10) {
            if (size < pos + 4)
                ok = 0;
            else
                pos += 4 + 4 * (Py_ssize_t)(((unsigned int)data[pos + 2] << 8) | data[pos + 3]);
        }
    }
    if (ok && data[0] & 0x20) {
        if (size <= pos)
            ok = 0;
        else
            end -= data[size - 1];
    }
    if (!ok || end < pos) {
        Py_DECREF(plain);
        Py_RETURN_NONE;
    }
    long twcc = twcc_id ? find_transport_sequence(data, size, twcc_id) : -1;
    PyObject *fields[6];
    fields[0] = PyLong_FromLong(data[1] & 0x7F);
    fields[1] = PyLong_FromLong(data[1] >> 7);
    fields[2] = PyLong_FromLong(((long)data[2] << 8) | data[3]);
    fields[3] = PyLong_FromUnsignedLong(((unsigned long)data[4] << 24) | ((unsigned long)data[5] << 16) |
                                        ((unsigned long)data[6] << 8) | data[7]);
    fields[4] = PyLong_FromUnsignedLong(((unsigned long)data[8] << 24) | ((unsigned long)data[9] << 16) |
                                        ((unsigned long)data[10] << 8) | data[11]);
    fields[5] = PyBytes_FromStringAndSize((const char *)data + pos, end - pos);
    PyObject *rtp = NULL;
    if (fields[0] && fields[1] && fields[2] && fields[3] && fields[4] && fields[5])
        rtp = PyObject_Vectorcall(args[3], fields, 6, NULL);
    for (int i = 0; i < 6; i++)
        Py_XDECREF(fields[i]);
    if (rtp == NULL) {
        Py_DECREF(plain);
        return NULL;
    }
    PyObject *seq = twcc >= 0 ? PyLong_FromLong(twcc) : Py_NewRef(Py_None);
    if (seq == NULL) {
        Py_DECREF(rtp);
        Py_DECREF(plain);
        return NULL;
    }
    PyObject *out = PyTuple_New(3);
    if (out == NULL) {
        Py_DECREF(seq);
        Py_DECREF(rtp);
        Py_DECREF(plain);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, rtp);
    PyTuple_SET_ITEM(out, 1, plain);
    PyTuple_SET_ITEM(out, 2, seq);
    return out;
}

/*
 * Write header + payload into slot, numbered with seq under one-byte extension ext_id
 * (1-14; 0: not numbered; a header with X set is not numbered either), SRTP-protect it
 * in place and set the iovec's length. Returns the protected length, or -1 when it does
 * not fit with room for SRTP's trailer, SRTP refused it, or the header is shorter than
 * its CSRC count says.
 */
static int write_protect(unsigned char *slot, Py_ssize_t slot_size, struct iovec *iov, void *ctx,
                         const unsigned char *header, Py_ssize_t hlen, const char *payload,
                         Py_ssize_t plen, long ext_id, long seq) {
    if (hlen < 12)
        return -1;
    Py_ssize_t fixed = 12 + 4 * (Py_ssize_t)(header[0] & 0x0F); /* with the CSRC list */
    if (fixed > hlen)
        return -1;
    int numbered = ext_id >= 1 && ext_id <= 14 && !(header[0] & 0x10);
    Py_ssize_t size = hlen + plen + (numbered ? 8 : 0);
    /* SRTP's trailer: the auth tag and, at most, an MKI (SRTP_MAX_TRAILER_LEN is 144) */
    if (size > slot_size - 144)
        return -1;
    unsigned char *out = slot;
    if (numbered) {
        memcpy(out, header, (size_t)fixed);
        out[0] |= 0x10;
        out += fixed;
        /* one-byte form, one word: id/length, the sequence number, a padding byte */
        out[0] = 0xBE;
        out[1] = 0xDE;
        out[2] = 0x00;
        out[3] = 0x01;
        out[4] = (unsigned char)((ext_id << 4) | 1);
        out[5] = (unsigned char)((seq >> 8) & 0xFF);
        out[6] = (unsigned char)(seq & 0xFF);
        out[7] = 0;
        out += 8;
        memcpy(out, header + fixed, (size_t)(hlen - fixed));
        out += hlen - fixed;
    } else {
        memcpy(out, header, (size_t)hlen);
        out += hlen;
    }
    memcpy(out, payload, (size_t)plen);
    int length = (int)size;
    if (srtp_protect_ptr(ctx, slot, &length) != 0)
        return -1;
    if (iov != NULL)
        iov->iov_len = (size_t)length;
    return length;
}

/*
 * protect_into(slot, slot_size, iov, ctx, header, payload, ext_id, seq) -> int
 *
 * slot: address of the arena slot (slot_size bytes); iov: address of its struct iovec
 * (0: none); ctx: the srtp_t; header: an RTP header (bytes); payload: bytes; ext_id: 1-14
 * to number the packet with seq under that one-byte-form extension id, 0 not to. A header
 * that already has an extension (X set) is not numbered, as send.with_transport_sequence.
 *
 * Returns the protected length, or -1 (see write_protect).
 */
static PyObject *protect_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "protect_into takes 8 arguments");
        return NULL;
    }
    if (srtp_protect_ptr == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_protect was not called");
        return NULL;
    }
    unsigned char *slot = PyLong_AsVoidPtr(args[0]);
    Py_ssize_t slot_size = PyLong_AsSsize_t(args[1]);
    struct iovec *iov = PyLong_AsVoidPtr(args[2]);
    void *ctx = PyLong_AsVoidPtr(args[3]);
    long ext_id = PyLong_AsLong(args[6]);
    long seq = PyLong_AsLong(args[7]);
    if (PyErr_Occurred())
        return NULL;
    if (slot == NULL || ctx == NULL) {
        PyErr_SetString(PyExc_ValueError, "null slot or SRTP context");
        return NULL;
    }
    if (!PyBytes_Check(args[4]) || !PyBytes_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "header and payload must be bytes");
        return NULL;
    }
    return PyLong_FromLong(write_protect(
        slot, slot_size, iov, ctx, (const unsigned char *)PyBytes_AS_STRING(args[4]),
        PyBytes_GET_SIZE(args[4]), PyBytes_AS_STRING(args[5]), PyBytes_GET_SIZE(args[5]),
        ext_id, seq));
}

/*
 * The fan-out: Producer.receive's loop over its consumers, with the steady-state copy of
 * edge_sfu.media.consumer.Consumer done here.
 *
 * A consumer of exactly the configured type, forwarding the packet's layer on a ready,
 * batched, unpaced send path whose writer is compiled, gets the copy Consumer._forward,
 * SendPath.send_rtp_parts/_send_ready and BatchWriter.queue would make: the same header
 * (rewritten sequence number and timestamp, its SSRC and payload type), the same
 * transport-wide number, the same arena slot, counters and bookkeeping, read and written
 * through the very attributes the Python code uses. Every other case (another type, a
 * layer switch, a VP8 picture-id rewrite, a pacer, a path not ready, a full batch, an
 * attribute not as expected) is handed to consumer.deliver(packet), which does all of it
 * in Python; tests/unit/edge_sfu/media/test_fastpath.py checks the two give the same
 * datagrams and state. A packet of a layer the consumer neither forwards nor awaits is
 * skipped here as ConsumerBase.deliver skips it while its silence check is not due.
 */
static PyObject *consumer_type = NULL;  /* edge_sfu.media.consumer.Consumer */
static PyObject *connected_state = NULL; /* aiortc's State.CONNECTED */
static PyObject *outbox_add = NULL;      /* egress._OUTBOX.add */
static Py_ssize_t batch_slots = 0;
static Py_ssize_t slot_bytes = 0;
static double silence_check_s = 0.0;     /* LAYER_SILENT_S / 2 */
static PyObject *one = NULL;             /* 1: the RTP component in aioice's _nominated */
static unsigned long long copies_made = 0; /* copies queued here, for tests and stats */

#define NAMES(X) \
    X(layer) X(seq) X(ts) X(marker) X(payload) X(arrival) X(deliver) X(_current) X(_target) \
    X(_desired) X(_silence_checked) X(_path) X(_epoch_first) X(_vp8) X(_pid_off) X(_tl0_off) \
    X(_dtls) X(_state) X(_tx_srtp) X(_session) X(_connection) X(_nominated) X(_pair) \
    X(_writer) X(dead) X(_pacer) X(_fast) X(_lens) X(_numbered) X(_slot_addrs) X(_iov_addrs) \
    X(_ctx_addr) X(_twcc_id) X(_twcc_seq) X(_seq_off) X(_ts_off) X(_pt) X(_ssrc) X(_dropped) \
    X(packets_sent) X(octets_sent) X(_max_out_seq) X(_last_out_ts) X(_last_arrival) \
    X(_frame_end) X(_last_vp8)
#define DECLARE(n) static PyObject *s_##n = NULL;
NAMES(DECLARE)
#define INTERN(n) \
    if (s_##n == NULL && (s_##n = PyUnicode_InternFromString(#n)) == NULL) \
        return -1;

static int intern_names(void) {
    NAMES(INTERN)
    return 0;
}

/* configure(consumer_type, connected_state, outbox_add, batch_slots, slot_bytes,
 *           silence_check_s) */
static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "configure takes 6 arguments");
        return NULL;
    }
    Py_ssize_t slots = PyLong_AsSsize_t(args[3]);
    Py_ssize_t size = PyLong_AsSsize_t(args[4]);
    double silence = PyFloat_AsDouble(args[5]);
    if (PyErr_Occurred())
        return NULL;
    if (!PyType_Check(args[0]) || !PyCallable_Check(args[2]) || slots <= 0 || size <= 144) {
        PyErr_SetString(PyExc_ValueError,
                        "configure: a type, a state, a callable, slots > 0, slot bytes > 144");
        return NULL;
    }
    if (intern_names() < 0)
        return NULL;
    if (one == NULL && (one = PyLong_FromLong(1)) == NULL)
        return NULL;
    Py_INCREF(args[0]);
    Py_XSETREF(consumer_type, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(connected_state, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(outbox_add, args[2]);
    batch_slots = slots;
    slot_bytes = size;
    silence_check_s = silence;
    Py_RETURN_NONE;
}

/* A new reference to obj.name, or NULL with no exception set (the caller goes slow). */
static PyObject *get(PyObject *obj, PyObject *name) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        PyErr_Clear();
    return value;
}

/* obj.name as a C long long (RTP timestamps, SSRCs and byte counts need more than 32
 * bits); -1 with *ok cleared when it is not an int or does not fit. */
static long long get_long(PyObject *obj, PyObject *name, int *ok) {
    PyObject *value = get(obj, name);
    if (value == NULL || !PyLong_CheckExact(value)) {
        Py_XDECREF(value);
        *ok = 0;
        return -1;
    }
    long long out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    if (out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        *ok = 0;
    }
    return out;
}

/* obj.name = value; -1 with an exception set on failure. */
static int set_long(PyObject *obj, PyObject *name, long long value) {
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, name, number);
    Py_DECREF(number);
    return rc;
}

/* obj.name += by; -1 with an exception set on failure. */
static int add_long(PyObject *obj, PyObject *name, long long by) {
    int ok = 1;
    long long value = get_long(obj, name, &ok);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%R is not an int", name);
        return -1;
    }
    return set_long(obj, name, value + by);
}

/* Whether obj.name is value (identity); 0 too when it cannot be read. */
static int is(PyObject *obj, PyObject *name, PyObject *value) {
    PyObject *got = get(obj, name);
    Py_XDECREF(got); /* only its identity is compared */
    return got != NULL && got == value;
}

/* Layer names compare by value (one producer's names are usually the same objects). */
static int same_layer(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    if (a == NULL || b == NULL || !PyUnicode_Check(a) || !PyUnicode_Check(b))
        return 0;
    return PyUnicode_Compare(a, b) == 0;
}

typedef struct {
    PyObject *layer, *payload, *arrival, *marker_obj;
    long long seq, ts, marker;
    double arrival_s;
} Packet;

enum { DONE = 0, SLOW = 1, FAILED = -1 };

/* A layer this consumer does not forward: skipped here unless deliver has work to do. */
static int other_layer(PyObject *c, const Packet *p) {
    PyObject *target = get(c, s__target), *desired = get(c, s__desired);
    int wanted = same_layer(p->layer, target) || same_layer(p->layer, desired);
    Py_XDECREF(target);
    Py_XDECREF(desired);
    if (wanted)
        return SLOW; /* a keyframe to switch on, or a wait to keep asking for */
    PyObject *checked = get(c, s__silence_checked);
    if (checked == NULL || !PyFloat_CheckExact(checked)) {
        Py_XDECREF(checked);
        return SLOW;
    }
    double since = p->arrival_s - PyFloat_AS_DOUBLE(checked);
    Py_DECREF(checked);
    return since < silence_check_s ? DONE : SLOW;
}

/* Whether the path is as SendPath._ready() needs it, batched, compiled and unpaced. */
static PyObject *ready_writer(PyObject *path) {
    PyObject *writer = NULL, *dtls = NULL, *tx = NULL, *conn = NULL, *nominated = NULL;
    PyObject *pair = NULL;
    int ready = 0;
    dtls = get(path, s__dtls);
    if (dtls == NULL || !is(dtls, s__state, connected_state))
        goto out;
    tx = get(dtls, s__tx_srtp);
    if (tx == NULL || tx == Py_None || !is(path, s__session, tx))
        goto out;
    conn = get(path, s__connection);
    nominated = conn != NULL ? get(conn, s__nominated) : NULL;
    if (nominated == NULL || !PyDict_Check(nominated))
        goto out;
    pair = PyDict_GetItemWithError(nominated, one); /* borrowed */
    if (pair == NULL) {
        PyErr_Clear();
        goto out;
    }
    if (!is(path, s__pair, pair) || !is(path, s__pacer, Py_None))
        goto out;
    writer = get(path, s__writer);
    if (writer == NULL || writer == Py_None || !is(writer, s_dead, Py_False))
        goto out;
    PyObject *fast = get(writer, s__fast);
    Py_XDECREF(fast);
    ready = fast != NULL && fast != Py_None;
out:
    Py_XDECREF(dtls);
    Py_XDECREF(tx);
    Py_XDECREF(conn);
    Py_XDECREF(nominated);
    if (!ready) {
        Py_XDECREF(writer);
        return NULL;
    }
    return writer;
}

/* One consumer's copy: DONE (sent, dropped or skipped as Python would), SLOW or FAILED. */
static int copy_one(PyObject *c, const Packet *p) {
    if ((PyObject *)Py_TYPE(c) != consumer_type)
        return SLOW;
    PyObject *current = get(c, s__current);
    int forwarding = same_layer(p->layer, current);
    Py_XDECREF(current);
    if (!forwarding)
        return other_layer(c, p);
    int ok = 1;
    long long epoch_first = get_long(c, s__epoch_first, &ok);
    long long seq_off = get_long(c, s__seq_off, &ok);
    long long ts_off = get_long(c, s__ts_off, &ok);
    long long pt = get_long(c, s__pt, &ok);
    long long ssrc = get_long(c, s__ssrc, &ok);
    PyObject *vp8 = get(c, s__vp8);
    int is_vp8 = vp8 == Py_True;
    if (vp8 != Py_True && vp8 != Py_False)
        ok = 0;
    Py_XDECREF(vp8);
    if (is_vp8 && (get_long(c, s__pid_off, &ok) != 0 || get_long(c, s__tl0_off, &ok) != 0))
        return SLOW; /* picture ids to rewrite: Python's vp8_rewrite_ids */
    if (!ok)
        return SLOW;
    PyObject *path = get(c, s__path);
    if (path == NULL || path == Py_None) {
        Py_XDECREF(path);
        return SLOW;
    }
    if (((p->seq - epoch_first) & 0xFFFF) >= 0x8000) {
        Py_DECREF(path);
        return DONE; /* older than this epoch: it belongs to the previous source */
    }
    PyObject *writer = ready_writer(path);
    if (writer == NULL) {
        Py_DECREF(path);
        return SLOW;
    }
    int result = SLOW;
    PyObject *lens = get(writer, s__lens), *numbered = NULL;
    PyObject *slots = get(writer, s__slot_addrs), *iovs = get(writer, s__iov_addrs);
    long ext_id = (long)get_long(path, s__twcc_id, &ok);
    long twcc_seq = (long)get_long(path, s__twcc_seq, &ok);
    PyObject *ctx_obj = get(writer, s__ctx_addr);
    void *ctx = NULL;
    if (ctx_obj != NULL && PyLong_CheckExact(ctx_obj))
        ctx = PyLong_AsVoidPtr(ctx_obj);
    Py_XDECREF(ctx_obj);
    if (!ok || lens == NULL || !PyList_CheckExact(lens) || slots == NULL ||
        !PyList_CheckExact(slots) || iovs == NULL || !PyList_CheckExact(iovs))
        goto out;
    Py_ssize_t index = PyList_GET_SIZE(lens);
    if (index >= batch_slots || index >= PyList_GET_SIZE(slots) ||
        index >= PyList_GET_SIZE(iovs))
        goto out; /* a full batch: queue() flushes it first */
    if (ext_id) {
        numbered = get(writer, s__numbered);
        if (numbered == NULL || !PyList_CheckExact(numbered))
            goto out;
    }
    unsigned char *slot = PyLong_AsVoidPtr(PyList_GET_ITEM(slots, index));
    struct iovec *iov = PyLong_AsVoidPtr(PyList_GET_ITEM(iovs, index));
    if (PyErr_Occurred() || slot == NULL || ctx == NULL) {
        PyErr_Clear();
        goto out;
    }
    /* from here on, as Python does it: nothing goes back to the slow path */
    result = FAILED;
    long long out_seq = (p->seq + seq_off) & 0xFFFF;
    long long out_ts = (p->ts + ts_off) & 0xFFFFFFFFLL;
    unsigned char header[12] = {
        0x80,
        (unsigned char)(((p->marker & 1) << 7) | (pt & 0x7F)),
        (unsigned char)(out_seq >> 8), (unsigned char)out_seq,
        (unsigned char)(out_ts >> 24), (unsigned char)(out_ts >> 16),
        (unsigned char)(out_ts >> 8), (unsigned char)out_ts,
        (unsigned char)(ssrc >> 24), (unsigned char)(ssrc >> 16),
        (unsigned char)(ssrc >> 8), (unsigned char)ssrc,
    };
    if (ext_id && set_long(path, s__twcc_seq, (twcc_seq + 1) & 0xFFFF) < 0)
        goto out;
    Py_ssize_t plen = PyBytes_GET_SIZE(p->payload);
    int length = write_protect(slot, slot_bytes, iov, ctx, header, 12,
                               PyBytes_AS_STRING(p->payload), plen, ext_id, twcc_seq);
    if (length < 0) {
        result = add_long(path, s__dropped, 1) < 0 ? FAILED : DONE;
        goto out;
    }
    PyObject *number = PyLong_FromLong(length);
    if (number == NULL || PyList_Append(lens, number) < 0) {
        Py_XDECREF(number);
        goto out;
    }
    Py_DECREF(number);
    if (ext_id) {
        PyObject *entry = Py_BuildValue("(llO)", twcc_seq, (long)(12 + plen + 8), Py_False);
        if (entry == NULL || PyList_Append(numbered, entry) < 0) {
            Py_XDECREF(entry);
            goto out;
        }
        Py_DECREF(entry);
    }
    if (index == 0) {
        PyObject *r = PyObject_CallOneArg(outbox_add, writer);
        if (r == NULL)
            goto out;
        Py_DECREF(r);
    }
    if (add_long(c, s_packets_sent, 1) < 0 || add_long(c, s_octets_sent, plen) < 0)
        goto out;
    PyObject *top = get(c, s__max_out_seq);
    int newest = top == Py_None;
    if (top != NULL && PyLong_CheckExact(top))
        newest = ((out_seq - PyLong_AsLongLong(top)) & 0xFFFF) < 0x8000;
    Py_XDECREF(top);
    if (newest) {
        if (set_long(c, s__max_out_seq, out_seq) < 0 || set_long(c, s__last_out_ts, out_ts) < 0 ||
            PyObject_SetAttr(c, s__last_arrival, p->arrival) < 0 ||
            PyObject_SetAttr(c, s__frame_end, p->marker_obj) < 0 ||
            (is_vp8 && PyObject_SetAttr(c, s__last_vp8, p->payload) < 0))
            goto out;
    }
    copies_made++;
    result = DONE;
out:
    Py_XDECREF(lens);
    Py_XDECREF(numbered);
    Py_XDECREF(slots);
    Py_XDECREF(iovs);
    Py_DECREF(writer);
    Py_DECREF(path);
    return result;
}

/* copies() -> int: how many copies fan_out has queued itself (not through deliver). */
static PyObject *copies(PyObject *module, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(copies_made);
}

/* fan_out(packet, consumers): consumer.deliver(packet) for each, the steady state here. */
static PyObject *fan_out(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "fan_out(packet, consumers: list)");
        return NULL;
    }
    PyObject *packet = args[0], *consumers = args[1];
    if (consumer_type == NULL || srtp_protect_ptr == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure and set_protect were not called");
        return NULL;
    }
    Packet p = {0};
    PyObject *seq = NULL, *ts = NULL;
    int ok = 0;
    p.layer = PyObject_GetAttr(packet, s_layer);
    p.payload = PyObject_GetAttr(packet, s_payload);
    p.arrival = PyObject_GetAttr(packet, s_arrival);
    p.marker_obj = PyObject_GetAttr(packet, s_marker);
    seq = PyObject_GetAttr(packet, s_seq);
    ts = PyObject_GetAttr(packet, s_ts);
    if (p.layer && p.payload && p.arrival && p.marker_obj && seq && ts) {
        p.seq = PyLong_AsLongLong(seq);
        p.ts = PyLong_AsLongLong(ts);
        p.marker = PyLong_AsLongLong(p.marker_obj);
        p.arrival_s = PyFloat_AsDouble(p.arrival);
        ok = !PyErr_Occurred();
    }
    /* anything unusual about the packet: every consumer takes it the Python way */
    int fast = ok && PyBytes_CheckExact(p.payload) && PyFloat_CheckExact(p.arrival);
    PyErr_Clear();
    PyObject *result = Py_None;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(consumers); i++) {
        PyObject *c = PyList_GET_ITEM(consumers, i);
        Py_INCREF(c);
        int how = fast ? copy_one(c, &p) : SLOW;
        if (how == SLOW) {
            PyObject *r = PyObject_CallMethodOneArg(c, s_deliver, packet);
            how = r == NULL ? FAILED : DONE;
            Py_XDECREF(r);
        }
        Py_DECREF(c);
        if (how == FAILED) {
            result = NULL;
            break;
        }
    }
    Py_XDECREF(p.layer);
    Py_XDECREF(p.payload);
    Py_XDECREF(p.arrival);
    Py_XDECREF(p.marker_obj);
    Py_XDECREF(seq);
    Py_XDECREF(ts);
    if (result == NULL)
        return NULL;
    Py_RETURN_NONE;
}


/*
 * send_batch(fd, name, iovs, lens, gso, max_segments, max_bytes) -> (sent, errno, gso, calls)
 *
 * BatchWriter._send in one call: the queued datagrams (iovs: the address of the writer's
 * struct iovec array, each iov_len already set; lens: their lengths, a list of ints) go
 * to name (a struct sockaddr, bytes) in sendmmsg calls, each run of one size (the last
 * of a run may be shorter) as one UDP GSO message when gso is true, as
 * BatchWriter._messages plans them. Returns how many datagrams left, the errno that
 * stopped it (0: none), whether GSO is still on (a kernel that refuses it, EIO/EINVAL/
 * ENOPROTOOPT/EOPNOTSUPP, turns it off and the rest goes as plain datagrams) and how many
 * system calls it made. EINTR is retried; EAGAIN/ENOBUFS (a full socket buffer) and any
 * other error stop it.
 */
#define MAX_BATCH 64
#define GSO_CMSG_SPACE CMSG_SPACE(sizeof(uint16_t))

static PyObject *send_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "send_batch takes 7 arguments");
        return NULL;
    }
    int fd = (int)PyLong_AsLong(args[0]);
    struct iovec *iovs = PyLong_AsVoidPtr(args[2]);
    int gso = PyObject_IsTrue(args[4]);
    long max_segments = PyLong_AsLong(args[5]);
    long max_bytes = PyLong_AsLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    if (!PyBytes_Check(args[1]) || !PyList_Check(args[3]) || iovs == NULL || gso < 0) {
        PyErr_SetString(PyExc_TypeError, "send_batch: fd, sockaddr bytes, iovs, list, flag");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(args[3]);
    if (count > MAX_BATCH) {
        PyErr_SetString(PyExc_ValueError, "send_batch: more datagrams than a batch holds");
        return NULL;
    }
    long lens[MAX_BATCH];
    for (Py_ssize_t i = 0; i < count; i++) {
        lens[i] = PyLong_AsLong(PyList_GET_ITEM(args[3], i));
        if (lens[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    struct mmsghdr msgs[MAX_BATCH];
    union {
        char buf[GSO_CMSG_SPACE];
        struct cmsghdr align;
    } ctrls[MAX_BATCH];
    Py_ssize_t starts[MAX_BATCH], sizes[MAX_BATCH];
    Py_ssize_t done = 0;
    int err = 0, calls = 0;
    while (done < count) {
        /* plan: (first, n) per message from done, as BatchWriter._messages */
        int planned = 0;
        Py_ssize_t i = done;
        while (i < count) {
            Py_ssize_t j = i + 1;
            if (gso) {
                long size = lens[i], total = lens[i];
                while (j < count && j - i < max_segments && total + lens[j] <= max_bytes) {
                    if (lens[j] == size) {
                        total += size;
                        j++;
                        continue;
                    }
                    if (lens[j] < size) /* a shorter datagram may end the run */
                        j++;
                    break;
                }
            }
            starts[planned] = i;
            sizes[planned] = j - i;
            planned++;
            i = j;
        }
        memset(msgs, 0, sizeof(msgs[0]) * (size_t)planned);
        for (int m = 0; m < planned; m++) {
            struct msghdr *hdr = &msgs[m].msg_hdr;
            hdr->msg_name = PyBytes_AS_STRING(args[1]);
            hdr->msg_namelen = (socklen_t)PyBytes_GET_SIZE(args[1]);
            hdr->msg_iov = iovs + starts[m];
            hdr->msg_iovlen = (size_t)sizes[m];
            if (sizes[m] > 1) {
                memset(ctrls[m].buf, 0, sizeof(ctrls[m].buf));
                hdr->msg_control = ctrls[m].buf;
                hdr->msg_controllen = sizeof(ctrls[m].buf);
                struct cmsghdr *cmsg = CMSG_FIRSTHDR(hdr);
                cmsg->cmsg_level = SOL_UDP;
                cmsg->cmsg_type = UDP_SEGMENT;
                cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t segment = (uint16_t)lens[starts[m]];
                memcpy(CMSG_DATA(cmsg), &segment, sizeof(segment));
            }
        }
        calls++;
        int result = sendmmsg(fd, msgs, (unsigned int)planned, 0);
        if (result > 0) {
            for (int m = 0; m < result; m++)
                done += sizes[m];
            continue;
        }
        int e = result == 0 ? 0 : errno;
        if (e == EINTR)
            continue;
        if (gso && (e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
            gso = 0;
            continue;
        }
        err = result == 0 ? EAGAIN : e;
        break;
    }
    return Py_BuildValue("(niOi)", done, err, gso ? Py_True : Py_False, calls);
}

/*
 * receive_many(fd, count, offset, earliest) -> (list[(bytes, float | None, addr | None)], errno)
 *
 * Up to count (1..64) datagrams queued on a non-blocking UDP socket, in one recvmmsg: what
 * drain_socket_reads' loop of socket.recvmsg calls reads, one system call per burst instead
 * of one per datagram. Each comes with its arrival time on the monotonic clock (the
 * kernel's SO_TIMESTAMPNS stamp minus offset, the wall clock's lead over the monotonic one),
 * None where the stamp is missing or not to be trusted (before earliest, or after now: the
 * wall clock was stepped), and its source address as socket.recvmsg gives it (getnameinfo
 * with NI_NUMERICHOST, as CPython's socket module) for a datagram that is not RTP or RTCP
 * (first byte outside 128..191), None for RTP and RTCP (the ingress never reads it).
 * errno is 0, or the error that ended the read with nothing read (EAGAIN: nothing queued).
 * The buffers are the module's own (the GIL is held throughout: the call never blocks).
 */
#define RECV_MAX 64
#define RECV_SLOT 65536 /* the largest UDP payload fits: nothing is ever truncated */
#define RECV_CTRL 64
/* SO_TIMESTAMPNS as the ingress sets it (Linux's value, as the Python side names it) */
#define STAMP_TYPE 35

static char *recv_buffers = NULL;

static PyObject *source_address(const struct sockaddr_storage *from, socklen_t len) {
    char host[NI_MAXHOST];
    if (getnameinfo((const struct sockaddr *)from, len, host, sizeof(host), NULL, 0,
                    NI_NUMERICHOST) != 0)
        Py_RETURN_NONE;
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)from;
        return Py_BuildValue("(si)", host, (int)ntohs(in4->sin_port));
    }
    if (from->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;
        return Py_BuildValue("(siII)", host, (int)ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned int)in6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static PyObject *receive_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "receive_many(fd, count, offset, earliest)");
        return NULL;
    }
    int fd = (int)PyLong_AsLong(args[0]);
    long count = PyLong_AsLong(args[1]);
    double offset = PyFloat_AsDouble(args[2]);
    double earliest = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 1 || count > RECV_MAX) {
        PyErr_SetString(PyExc_ValueError, "receive_many: count must be 1 to 64");
        return NULL;
    }
    if (recv_buffers == NULL) {
        recv_buffers = malloc((size_t)RECV_MAX * RECV_SLOT);
        if (recv_buffers == NULL)
            return PyErr_NoMemory();
    }
    struct mmsghdr msgs[RECV_MAX];
    struct iovec iovs[RECV_MAX];
    struct sockaddr_storage froms[RECV_MAX];
    union {
        char buf[RECV_CTRL];
        struct cmsghdr align;
    } ctrls[RECV_MAX];
    memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
    for (long i = 0; i < count; i++) {
        iovs[i].iov_base = recv_buffers + (size_t)i * RECV_SLOT;
        iovs[i].iov_len = RECV_SLOT;
        struct msghdr *hdr = &msgs[i].msg_hdr;
        hdr->msg_name = &froms[i];
        hdr->msg_namelen = sizeof(froms[i]);
        hdr->msg_iov = &iovs[i];
        hdr->msg_iovlen = 1;
        hdr->msg_control = ctrls[i].buf;
        hdr->msg_controllen = sizeof(ctrls[i].buf);
    }
    int got;
    do {
        got = recvmmsg(fd, msgs, (unsigned int)count, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    int err = got < 0 ? errno : 0;
    PyObject *out = PyList_New(got > 0 ? got : 0);
    if (out == NULL)
        return NULL;
    if (got > 0) {
        struct timespec clock;
        clock_gettime(CLOCK_MONOTONIC, &clock);
        double now = (double)clock.tv_sec + (double)clock.tv_nsec * 1e-9;
        for (int i = 0; i < got; i++) {
            struct msghdr *hdr = &msgs[i].msg_hdr;
            const unsigned char *data = (const unsigned char *)iovs[i].iov_base;
            unsigned int size = msgs[i].msg_len;
            PyObject *at = NULL;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != STAMP_TYPE)
                    continue;
                /* two 64-bit fields, or two 32-bit ones (a 32-bit ABI's old timespec) */
                size_t room = c->cmsg_len - CMSG_LEN(0);
                double seconds, nanoseconds;
                if (room >= 2 * sizeof(int64_t)) {
                    int64_t stamp[2];
                    memcpy(stamp, CMSG_DATA(c), sizeof(stamp));
                    seconds = (double)stamp[0];
                    nanoseconds = (double)stamp[1];
                } else if (room >= 2 * sizeof(int32_t)) {
                    int32_t stamp[2];
                    memcpy(stamp, CMSG_DATA(c), sizeof(stamp));
                    seconds = (double)stamp[0];
                    nanoseconds = (double)stamp[1];
                } else {
                    break;
                }
                {
                    double when = seconds + nanoseconds * 1e-9 - offset;
                    /* not from long before this burst, nor from the future */
                    if (earliest < when && when <= now)
                        at = PyFloat_FromDouble(when);
                    break;
                }
            }
            if (at == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(out);
                    return NULL;
                }
                at = Py_NewRef(Py_None);
            }
            PyObject *addr;
            if (size > 0 && data[0] > 127 && data[0] < 192)
                addr = Py_NewRef(Py_None);
            else
                addr = source_address(&froms[i], hdr->msg_namelen);
            PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
            PyObject *item = NULL;
            if (addr != NULL && bytes != NULL)
                item = PyTuple_Pack(3, bytes, at, addr);
            Py_XDECREF(bytes);
            Py_DECREF(at);
            Py_XDECREF(addr);
            if (item == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, i, item);
        }
    }
    PyObject *result = Py_BuildValue("(Ni)", out, err);
    return result;
}

static PyMethodDef methods[] = {
    {"set_protect", set_protect, METH_O, "Use the srtp_protect at this address."},
    {"set_unprotect", set_unprotect, METH_O, "Use the srtp_unprotect at this address."},
    {"protect_into", (PyCFunction)(void (*)(void))protect_into, METH_FASTCALL,
     "Write, number and SRTP-protect one RTP packet into an arena slot."},
    {"send_batch", (PyCFunction)(void (*)(void))send_batch, METH_FASTCALL,
     "Send a writer's queued datagrams: sendmmsg, equal-size runs as UDP GSO messages."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "Set what fan_out needs: the consumer type, CONNECTED, the outbox, slots, silence."},
    {"copies", copies, METH_NOARGS, "How many copies fan_out queued itself."},
    {"ingest", (PyCFunction)(void (*)(void))ingest, METH_FASTCALL,
     "Unprotect, parse and read the transport-wide number of one SRTP packet."},
    {"receive_many", (PyCFunction)(void (*)(void))receive_many, METH_FASTCALL,
     "Read up to 64 queued datagrams in one recvmmsg, with arrival stamps."},
    {"fan_out", (PyCFunction)(void (*)(void))fan_out, METH_FASTCALL,
     "Deliver one packet to a list of consumers, the steady-state copies compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The forwarder's per-copy work, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModule_Create(&module); }
