// edge-video-tracks.js: the objects a Room hands out (participants, publications, tracks)
// and the small event emitter they share. Imported and re-exported by edge-video.js.

/** A tiny event emitter (on / once / off / emit), like Node's. */
export class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return this;
  }
  once(event, handler) {
    const wrapped = (...args) => {
      this.off(event, wrapped);
      handler(...args);
    };
    return this.on(event, wrapped);
  }
  off(event, handler) {
    const set = this._handlers.get(event);
    if (set) set.delete(handler);
    return this;
  }
  emit(event, ...args) {
    const set = this._handlers.get(event);
    if (!set) return false;
    for (const handler of [...set]) {
      try {
        handler(...args);
      } catch (err) {
        console.error(`edge-video: '${event}' handler failed`, err);
      }
    }
    return true;
  }
}

/** An error carrying a Twilio error code (e.g. 53118 room completed). */
export class EdgeVideoError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'EdgeVideoError';
    this.code = code;
  }
}

export function attachElement(track, element) {
  const el = element || document.createElement(track.kind === 'video' ? 'video' : 'audio');
  el.autoplay = true;
  el.playsInline = true;
  if (track.kind === 'video') el.muted = true; // video elements never play sound here
  el.srcObject = new MediaStream([track]);
  const played = el.play();
  if (played && played.catch) played.catch(() => {}); // autoplay may need a gesture
  return el;
}

/** A track this browser publishes: wraps a MediaStreamTrack; enable()/disable() mute it. */
export class LocalTrack extends Emitter {
  constructor(mediaStreamTrack, name, room) {
    super();
    this.mediaStreamTrack = mediaStreamTrack;
    this.kind = mediaStreamTrack.kind;
    this.name = name;
    this.id = mediaStreamTrack.id;
    this.sid = null; // set when the server confirms the publication
    this._room = room;
  }
  get isEnabled() {
    return this.mediaStreamTrack.enabled;
  }
  /** Mute (false) or unmute (true); the others get trackDisabled / trackEnabled. */
  enable(enabled = true) {
    if (this.mediaStreamTrack.enabled === enabled) return this;
    this.mediaStreamTrack.enabled = enabled;
    if (this.sid && this._room) this._room._send({ type: 'set-enabled', track_sid: this.sid, enabled });
    this.emit(enabled ? 'enabled' : 'disabled', this);
    return this;
  }
  disable() {
    return this.enable(false);
  }
  attach(element) {
    return attachElement(this.mediaStreamTrack, element);
  }
  stop() {
    this.mediaStreamTrack.stop();
    this.emit('stopped', this);
  }
}

const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;
let dataTrackCount = 0;

function messageSize(data) {
  if (typeof data === 'string') return new TextEncoder().encode(data).length;
  if (typeof Blob !== 'undefined' && data instanceof Blob) return data.size;
  return data.byteLength;
}

function channelOptions(info) {
  const options = { negotiated: true, id: info.id, ordered: info.ordered !== false };
  if (info.max_retransmits !== null && info.max_retransmits !== undefined) options.maxRetransmits = info.max_retransmits;
  if (info.max_packet_life_time !== null && info.max_packet_life_time !== undefined) options.maxPacketLifeTime = info.max_packet_life_time;
  return options;
}

/**
 * A data track this browser publishes, like Twilio's LocalDataTrack: `send()` strings or
 * binary messages (up to 16 KiB) once published. Reliable and ordered unless
 * `maxRetransmits` or `maxPacketLifeTime` (ms) is given; `ordered: false` lets messages
 * overtake each other. Messages sent before the track is published are dropped.
 */
export class LocalDataTrack extends Emitter {
  constructor(options = {}) {
    super();
    if (options.maxRetransmits != null && options.maxPacketLifeTime != null) {
      throw new TypeError('give maxRetransmits or maxPacketLifeTime, not both');
    }
    dataTrackCount += 1;
    this.kind = 'data';
    this.id = `data${dataTrackCount}-${Math.random().toString(36).slice(2, 10)}`;
    this.name = options.name || this.id;
    this.ordered = options.ordered !== false;
    this.maxRetransmits = options.maxRetransmits ?? null;
    this.maxPacketLifeTime = options.maxPacketLifeTime ?? null;
    this.maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;
    this.sid = null; // set when the server confirms the publication
    this._channel = null;
  }
  get reliable() {
    return this.maxRetransmits === null && this.maxPacketLifeTime === null;
  }
  get isEnabled() {
    return true;
  }
  /** Send to every subscriber; false when not published. Throws over the size limit. */
  send(data) {
    const size = messageSize(data);
    if (size > this.maxMessageBytes) {
      throw new EdgeVideoError(53004, `a data message of ${size} bytes is over the ${this.maxMessageBytes}-byte limit`);
    }
    if (!this._channel || this._channel.readyState !== 'open') return false;
    this._channel.send(data);
    return true;
  }
  _request() {
    const request = { client_id: this.id, kind: 'data', name: this.name, ordered: this.ordered };
    if (this.maxRetransmits !== null) request.max_retransmits = this.maxRetransmits;
    if (this.maxPacketLifeTime !== null) request.max_packet_life_time = this.maxPacketLifeTime;
    return request;
  }
  _open(pc, info) {
    if (!this._channel) this._channel = pc.createDataChannel(this.name, channelOptions(info));
  }
  stop() {
    if (this._channel) this._channel.close();
    this._channel = null;
    this.emit('stopped', this);
  }
}

/** A data track being received: emits `message` (string or ArrayBuffer). */
export class RemoteDataTrack extends Emitter {
  constructor(publication, pc, info) {
    super();
    this.sid = publication.trackSid;
    this.name = publication.trackName;
    this.kind = 'data';
    this.ordered = info.ordered !== false;
    this.maxRetransmits = info.max_retransmits ?? null;
    this.maxPacketLifeTime = info.max_packet_life_time ?? null;
    this._channel = pc.createDataChannel(this.name, channelOptions(info));
    this._channel.binaryType = 'arraybuffer';
    this._channel.onmessage = (event) => this.emit('message', event.data, this);
  }
  get reliable() {
    return this.maxRetransmits === null && this.maxPacketLifeTime === null;
  }
  get isEnabled() {
    return true;
  }
  /** Data tracks have nothing to render: kept so code can treat every track alike. */
  detach() {
    this._channel.close();
    return [];
  }
}

/** A publication of a remote participant; `track` is set while subscribed. */
export class RemoteTrackPublication extends Emitter {
  constructor(info) {
    super();
    this.trackSid = info.sid;
    this.trackName = info.name;
    this.kind = info.kind;
    this.isTrackEnabled = info.enabled !== false;
    this.track = null;
  }
  get isSubscribed() {
    return this.track !== null;
  }
}

/** A remote track being received: `attach()` returns a playing <video>/<audio> element. */
export class RemoteTrack extends Emitter {
  constructor(publication, mediaStreamTrack, room) {
    super();
    this.sid = publication.trackSid;
    this.name = publication.trackName;
    this.kind = publication.kind;
    this.mediaStreamTrack = mediaStreamTrack;
    this._publication = publication;
    this._room = room;
    this._observers = new Map();
  }
  get isEnabled() {
    return this._publication.isTrackEnabled;
  }
  /** Attach to an element; for video, its rendered size chooses the layer received. */
  attach(element) {
    const el = attachElement(this.mediaStreamTrack, element);
    if (this.kind === 'video' && typeof ResizeObserver !== 'undefined' && !this._observers.has(el)) {
      const observer = new ResizeObserver((entries) => {
        const box = entries[entries.length - 1].contentRect;
        this.setRenderSize(box.width, box.height);
      });
      observer.observe(el);
      this._observers.set(el, observer);
    }
    return el;
  }
  detach() {
    const elements = [...this._observers.keys()];
    for (const [el, observer] of this._observers) {
      observer.disconnect();
      el.srcObject = null;
    }
    this._observers.clear();
    return elements;
  }
  /** Ask for the layer that best fits width x height CSS pixels (device pixels sent). */
  setRenderSize(width, height) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(width * ratio);
    const h = Math.round(height * ratio);
    if (this._lastSize && this._lastSize[0] === w && this._lastSize[1] === h) return;
    this._lastSize = [w, h];
    this._room._send({ type: 'set-render-size', track_sid: this.sid, width: Math.min(w, 16384), height: Math.min(h, 16384) });
  }
}

/** Someone in the room: `identity`, `sid`, `state`, `tracks` (Map of publications). */
export class Participant extends Emitter {
  constructor(info) {
    super();
    this.sid = info.sid;
    this.identity = info.identity;
    this.state = info.state || 'connected';
    this.tracks = new Map();
  }
  get audioTracks() {
    return new Map([...this.tracks].filter(([, t]) => t.kind === 'audio'));
  }
  get videoTracks() {
    return new Map([...this.tracks].filter(([, t]) => t.kind === 'video'));
  }
  get dataTracks() {
    return new Map([...this.tracks].filter(([, t]) => t.kind === 'data'));
  }
}

/**
 * This browser's participant: its published tracks by track SID (or local id).
 * Events: trackPublished(track), trackPublicationFailed(error, track).
 */
export class LocalParticipant extends Participant {
  constructor(info, room) {
    super(info);
    this._room = room;
  }

  /**
   * Publish a LocalDataTrack, LocalTrack or MediaStreamTrack; resolves with the track once
   * the server has published it (its `sid` set), rejects with an EdgeVideoError if refused.
   */
  publishTrack(track) {
    const room = this._room;
    const local = track instanceof LocalDataTrack || track instanceof LocalTrack ? track : new LocalTrack(track, track.kind === 'audio' ? 'microphone' : 'camera', room);
    if (local instanceof LocalTrack) local._room = room;
    if (!room._localTracks.includes(local)) room._localTracks.push(local);
    this.tracks.set(local.sid || local.id, local);
    return new Promise((resolve, reject) => {
      const ok = () => {
        local.off('publicationFailed', bad);
        resolve(local);
      };
      const bad = (err) => {
        local.off('published', ok);
        reject(err);
      };
      local.once('published', ok);
      local.once('publicationFailed', bad);
      room._publish([local]);
    });
  }

  /** Stop publishing a track; the others get trackUnpublished. */
  unpublishTrack(track) {
    const room = this._room;
    room._localTracks = room._localTracks.filter((t) => t !== track);
    room._pendingPublish.delete(track.id);
    this.tracks.delete(track.sid || track.id);
    if (track.sid) room._send({ type: 'unpublish', track_sid: track.sid });
    if (track.kind === 'data') track.stop();
    track.sid = null;
    return track;
  }
}

