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
}

/** This browser's participant: its published LocalTracks by track SID (or local id). */
export class LocalParticipant extends Participant {}

