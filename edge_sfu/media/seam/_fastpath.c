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
#include <sys/uio.h>

typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

static protect_fn srtp_protect_ptr = NULL;

/* set_protect(address): the address of libsrtp's srtp_protect, as an int. */
static PyObject *set_protect(PyObject *module, PyObject *arg) {
    void *address = PyLong_AsVoidPtr(arg);
    if (address == NULL && PyErr_Occurred())
        return NULL;
    srtp_protect_ptr = (protect_fn)address;
    Py_RETURN_NONE;
}

/*
 * protect_into(slot, slot_size, iov, ctx, header, payload, ext_id, seq) -> int
 *
 * slot: address of the arena slot (slot_size bytes); iov: address of its struct iovec
 * (0: none); ctx: the srtp_t; header: an RTP header (bytes); payload: bytes; ext_id: 1-14
 * to number the packet with seq under that one-byte-form extension id, 0 not to. A header
 * that already has an extension (X set) is not numbered, as send.with_transport_sequence.
 *
 * Returns the protected length, or -1 when the packet does not fit the slot with room for
 * SRTP's trailer, or SRTP refused it, or the header is shorter than its CSRC count says.
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
    const unsigned char *header = (const unsigned char *)PyBytes_AS_STRING(args[4]);
    Py_ssize_t hlen = PyBytes_GET_SIZE(args[4]);
    const char *payload = PyBytes_AS_STRING(args[5]);
    Py_ssize_t plen = PyBytes_GET_SIZE(args[5]);
    if (hlen < 12)
        return PyLong_FromLong(-1);
    Py_ssize_t fixed = 12 + 4 * (Py_ssize_t)(header[0] & 0x0F); /* with the CSRC list */
    if (fixed > hlen)
        return PyLong_FromLong(-1);
    int numbered = ext_id >= 1 && ext_id <= 14 && !(header[0] & 0x10);
    Py_ssize_t size = hlen + plen + (numbered ? 8 : 0);
    /* SRTP's trailer: the auth tag and, at most, an MKI (SRTP_MAX_TRAILER_LEN is 144) */
    if (size > slot_size - 144)
        return PyLong_FromLong(-1);
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
        return PyLong_FromLong(-1);
    if (iov != NULL)
        iov->iov_len = (size_t)length;
    return PyLong_FromLong(length);
}

static PyMethodDef methods[] = {
    {"set_protect", set_protect, METH_O, "Use the srtp_protect at this address."},
    {"protect_into", (PyCFunction)(void (*)(void))protect_into, METH_FASTCALL,
     "Write, number and SRTP-protect one RTP packet into an arena slot."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The forwarder's per-copy work, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModule_Create(&module); }
