// @ts-check
// edge-video-tracks.js: the signaling protocol's constants and message types, the objects a
// Room hands out (participants, publications, tracks) and the small event emitter they
// share. Imported and re-exported by edge-video.js.

/**
 * The signaling protocol (v1) as this client speaks it: the one place its names, codes and
 * limits are written. docs/signaling.md documents them; edge_sfu/signaling/protocol.py is
 * the server's side.
 */
export const PROTOCOL = Object.freeze({
  VERSION: 1,
  SUBPROTOCOL: 'edge-sfu.v1',
  /** Message types, client to server. */
  CLIENT: Object.freeze({
    JOIN: 'join',
    ANSWER: 'answer',
    PUBLISH: 'publish',
    UNPUBLISH: 'unpublish',
    SET_ENABLED: 'set-enabled',
    SET_RENDER_SIZE: 'set-render-size',
    SET_PRIORITY: 'set-priority',
    SET_PUBLISH_PRIORITY: 'set-publish-priority',
    SET_SWITCHED_OFF: 'set-switched-off',
    LINK_STATS: 'link-stats',
    SENDING_LAYERS: 'sending-layers',
    PING: 'ping',
    PONG: 'pong',
    LEAVE: 'leave',
  }),
  /** Message types, server to client. */
  SERVER: Object.freeze({
    JOINED: 'joined',
    OFFER: 'offer',
    PUBLISHED: 'published',
    PUBLISH_FAILED: 'publish-failed',
    PARTICIPANT_CONNECTED: 'participant-connected',
    PARTICIPANT_DISCONNECTED: 'participant-disconnected',
    PARTICIPANT_RECONNECTING: 'participant-reconnecting',
    PARTICIPANT_RECONNECTED: 'participant-reconnected',
    TRACK_PUBLISHED: 'track-published',
    TRACK_UNPUBLISHED: 'track-unpublished',
    TRACK_ENABLED: 'track-enabled',
    TRACK_DISABLED: 'track-disabled',
    TRACK_SUBSCRIBED: 'track-subscribed',
    TRACK_UNSUBSCRIBED: 'track-unsubscribed',
    TRACK_SWITCHED_OFF: 'track-switched-off',
    TRACK_SWITCHED_ON: 'track-switched-on',
    TRACK_PRIORITY_CHANGED: 'track-priority-changed',
    ROOM_COMPLETED: 'room-completed',
    RECORDING_STARTED: 'recording-started',
    RECORDING_STOPPED: 'recording-stopped',
    ERROR: 'error',
    DISCONNECTED: 'disconnected',
    PING: 'ping',
    PONG: 'pong',
    SEND_LAYERS: 'send-layers',
    DOMINANT_SPEAKER: 'dominant-speaker',
    NETWORK_QUALITY: 'network-quality',
  }),
  /** `join.network_quality` verbosity names, as twilio-video.js's levels 0 to 3. */
  NETWORK_QUALITY_VERBOSITY: Object.freeze(['none', 'minimal', 'moderate', 'detailed']),
  /** Twilio error codes this client raises itself. */
  CODE: Object.freeze({
    SIGNALING_ERROR: 53000,
    SIGNALING_DISCONNECTED: 53001,
    SIGNALING_TIMEOUT: 53002,
    INVALID_CLIENT_MESSAGE: 53004,
  }),
  /** Tracks in one `publish` message. */
  MAX_TRACKS_PER_MESSAGE: 16,
  /** Characters of a `client_id` (letters, digits and `_.:{}-`). */
  MAX_CLIENT_ID: 64,
  /** Largest `set-render-size` width or height. */
  MAX_DIMENSION: 16384,
  /** Largest data-track message until `joined` says otherwise (Twilio's limit). */
  DEFAULT_MAX_DATA_MESSAGE_BYTES: 16 * 1024,
  /** Simulcast layers of one video track (`publish.tracks[].layers`). */
  MAX_LAYERS: 3,
});

/**
 * Twilio's Track.Priority values and `bandwidthProfile.video` choices (the server's
 * edge_sfu/media/allocator.py holds the same lists).
 */
export const TRACK_PRIORITIES = Object.freeze(/** @type {const} */ (['low', 'standard', 'high']));
export const BANDWIDTH_PROFILE_CHOICES = Object.freeze({
  mode: ['grid', 'collaboration', 'presentation'],
  dominantSpeakerPriority: TRACK_PRIORITIES,
  trackSwitchOffMode: ['detected', 'predicted', 'disabled'],
  clientTrackSwitchOffControl: ['auto', 'manual'],
  contentPreferencesMode: ['auto', 'manual'],
});

// ---- messages (docs/signaling.md). Clients ignore fields and types they do not know.

const { CLIENT, SERVER } = PROTOCOL;

/** @typedef {'audio' | 'video' | 'data'} TrackKind */
/** @typedef {'connected' | 'reconnecting' | 'disconnected'} ParticipantState */
/** @typedef {{sid: string, name: string, kind: TrackKind, enabled: boolean}} TrackInfo */
/**
 * @typedef {{sid: string, identity: string, state?: ParticipantState, tracks?: TrackInfo[]}}
 *   ParticipantInfo
 */
/**
 * A data channel the server opened (negotiated: this side opens the same `id`).
 * @typedef {{id: number, ordered?: boolean, max_retransmits?: number | null,
 *   max_packet_life_time?: number | null}} ChannelInfo
 */
/**
 * What a subscription delivers: `mid` (audio, video) or `channel` (data).
 * @typedef {{participant_sid: string, track_sid: string, mid?: string, channel?: ChannelInfo}}
 *   Subscription
 */
/** @typedef {'low' | 'standard' | 'high'} TrackPriority */
/**
 * One simulcast layer of a published video track, lowest first in `layers`.
 * @typedef {{rid: string, width: number, height: number, max_bitrate?: number}} LayerRequest
 */
/**
 * One entry of `publish.tracks`.
 * @typedef {{client_id: string, kind: TrackKind, name: string, enabled?: boolean,
 *   codec?: string, ordered?: boolean, max_retransmits?: number,
 *   max_packet_life_time?: number, layers?: LayerRequest[], priority?: TrackPriority}}
 *   TrackRequest
 */
/**
 * `join.bandwidth_profile`: Twilio's `bandwidthProfile` in snake case.
 * @typedef {{video?: {mode?: string, max_subscription_bitrate?: number | null,
 *   dominant_speaker_priority?: string, track_switch_off_mode?: string,
 *   client_track_switch_off_control?: string, content_preferences_mode?: string}}}
 *   BandwidthProfileInfo
 */

/**
 * @typedef {'none' | 'minimal' | 'moderate' | 'detailed'} NetworkQualityVerbosity
 * @typedef {{type: typeof CLIENT.JOIN, version: number, token?: string, room?: string,
 *   reconnect_token?: string, bandwidth_profile?: BandwidthProfileInfo,
 *   dominant_speaker?: boolean,
 *   network_quality?: {local?: NetworkQualityVerbosity, remote?: NetworkQualityVerbosity}}}
 *   JoinMessage
 * @typedef {{type: typeof CLIENT.ANSWER, negotiation: number, sdp: string}} AnswerMessage
 * @typedef {{type: typeof CLIENT.PUBLISH, tracks: TrackRequest[]}} PublishMessage
 * @typedef {{type: typeof CLIENT.UNPUBLISH, track_sid: string}} UnpublishMessage
 * @typedef {{type: typeof CLIENT.SET_ENABLED, track_sid: string, enabled: boolean}}
 *   SetEnabledMessage
 * @typedef {{type: typeof CLIENT.SET_RENDER_SIZE, track_sid: string, width: number,
 *   height: number}} SetRenderSizeMessage
 * @typedef {{type: typeof CLIENT.SET_PRIORITY, track_sid: string,
 *   priority: TrackPriority | null}} SetPriorityMessage
 * @typedef {{type: typeof CLIENT.SET_PUBLISH_PRIORITY, track_sid: string,
 *   priority: TrackPriority}} SetPublishPriorityMessage
 * @typedef {{type: typeof CLIENT.SET_SWITCHED_OFF, track_sid: string, switched_off: boolean}}
 *   SetSwitchedOffMessage
 * @typedef {{type: typeof CLIENT.LINK_STATS, available_send_bps: number | null}}
 *   LinkStatsMessage
 * @typedef {{type: typeof CLIENT.SENDING_LAYERS, track_sid: string, rids: string[]}}
 *   SendingLayersMessage
 * @typedef {{type: typeof CLIENT.PING | typeof CLIENT.PONG, ref?: string | number}} PingMessage
 * @typedef {{type: typeof CLIENT.LEAVE}} LeaveMessage
 * @typedef {JoinMessage | AnswerMessage | PublishMessage | UnpublishMessage |
 *   SetEnabledMessage | SetRenderSizeMessage | SetPriorityMessage | SetPublishPriorityMessage |
 *   SetSwitchedOffMessage | LinkStatsMessage | SendingLayersMessage | PingMessage |
 *   LeaveMessage} ClientMessage
 */

/**
 * @typedef {{type: typeof SERVER.JOINED, version: number, room: {sid: string, name: string},
 *   participant: ParticipantInfo, participants: ParticipantInfo[],
 *   subscriptions?: Subscription[], ice_servers?: RTCIceServer[], reconnect_token: string,
 *   heartbeat_interval?: number, heartbeat_timeout?: number, reconnect_window?: number,
 *   max_data_message_bytes?: number}} JoinedMessage
 * @typedef {{type: typeof SERVER.OFFER, negotiation: number, sdp: string,
 *   publish?: Record<string, string>}} OfferMessage
 * @typedef {{type: typeof SERVER.PUBLISHED, tracks?: {client_id: string, sid: string,
 *   channel?: ChannelInfo}[]}} PublishedMessage
 * @typedef {{type: typeof SERVER.PUBLISH_FAILED, client_id: string, code: number,
 *   message: string}} PublishFailedMessage
 * @typedef {{type: typeof SERVER.PARTICIPANT_CONNECTED, participant: ParticipantInfo}}
 *   ParticipantConnectedMessage
 * @typedef {{type: typeof SERVER.PARTICIPANT_DISCONNECTED | typeof SERVER.PARTICIPANT_RECONNECTING
 *   | typeof SERVER.PARTICIPANT_RECONNECTED, participant_sid: string}} ParticipantStateMessage
 * @typedef {{type: typeof SERVER.TRACK_PUBLISHED, participant_sid: string, track: TrackInfo}}
 *   TrackPublishedMessage
 * @typedef {{type: typeof SERVER.TRACK_UNPUBLISHED | typeof SERVER.TRACK_ENABLED
 *   | typeof SERVER.TRACK_DISABLED | typeof SERVER.TRACK_UNSUBSCRIBED, participant_sid: string,
 *   track_sid: string}} TrackStateMessage
 * @typedef {{type: typeof SERVER.TRACK_SUBSCRIBED} & Subscription} TrackSubscribedMessage
 * @typedef {{type: typeof SERVER.TRACK_SWITCHED_OFF | typeof SERVER.TRACK_SWITCHED_ON,
 *   participant_sid: string, track_sid: string, reason?: string}} TrackSwitchMessage
 * @typedef {{type: typeof SERVER.TRACK_PRIORITY_CHANGED, participant_sid: string,
 *   track_sid: string, priority: TrackPriority}} TrackPriorityChangedMessage
 * @typedef {{type: typeof SERVER.ROOM_COMPLETED}} RoomCompletedMessage
 * @typedef {{type: typeof SERVER.RECORDING_STARTED | typeof SERVER.RECORDING_STOPPED}}
 *   RecordingMessage
 * @typedef {{type: typeof SERVER.ERROR, code: number, message: string, ref?: string | number}}
 *   ErrorMessage
 * @typedef {{type: typeof SERVER.DISCONNECTED, code: number | null, message: string}}
 *   DisconnectedMessage
 * @typedef {{type: typeof SERVER.PING | typeof SERVER.PONG, ref?: string | number}}
 *   ServerPingMessage
 * @typedef {{type: typeof SERVER.SEND_LAYERS, track_sid: string, rids: string[]}}
 *   SendLayersMessage
 * @typedef {{type: typeof SERVER.DOMINANT_SPEAKER, participant_sid: string | null}}
 *   DominantSpeakerMessage
 * @typedef {{type: typeof SERVER.NETWORK_QUALITY, participant_sid: string, level: number,
 *   [more: string]: unknown}} NetworkQualityMessage
 * @typedef {JoinedMessage | OfferMessage | PublishedMessage | PublishFailedMessage |
 *   ParticipantConnectedMessage | ParticipantStateMessage | TrackPublishedMessage |
 *   TrackStateMessage | TrackSubscribedMessage | TrackSwitchMessage |
 *   TrackPriorityChangedMessage | RoomCompletedMessage | RecordingMessage |
 *   ErrorMessage | DisconnectedMessage | ServerPingMessage | SendLayersMessage |
 *   DominantSpeakerMessage | NetworkQualityMessage} ServerMessage
 */

/**
 * What the tracks and the local participant may ask of the room that publishes them; the
 * room builds it and only it sends messages.
 * @typedef {object} Publisher
 * @property {(track: LocalTrack | LocalDataTrack) => void} publish Ask the server to publish
 *   a track (kept by the room until unpublished; sent again after a failed connection).
 * @property {(track: LocalTrack | LocalDataTrack) => void} unpublish Stop publishing it.
 * @property {(trackSid: string, enabled: boolean) => void} setEnabled Mute or unmute a
 *   published track for the others.
 * @property {(trackSid: string, priority: TrackPriority) => void} setPriority The priority
 *   subscribers give a published track.
 * @property {(previous: MediaStreamTrack, next: MediaStreamTrack) => Promise<void>} replace
 *   Send `next` wherever `previous` is sent (another camera or microphone, same publication).
 */
/**
 * What a subscribed track may ask of the room that receives it.
 * @typedef {object} Subscriber
 * @property {(trackSid: string, width: number, height: number) => void} requestRenderSize
 *   Ask for the layer of a subscribed video track that fits `width` x `height` device pixels.
 * @property {(trackSid: string, priority: TrackPriority | null) => void} setPriority This
 *   subscriber's priority for the track (null: the publisher's).
 * @property {(trackSid: string, off: boolean) => void} setSwitchedOff Switch it off or on.
 * @property {() => {clientTrackSwitchOffControl: string, contentPreferencesMode: string}}
 *   profile The room's bandwidth profile choices.
 */

/**
 * @param {unknown} priority
 * @param {boolean} nullable
 * @returns {TrackPriority | null}
 */
export function checkPriority(priority, nullable) {
  if (priority === null && nullable) return null;
  if (typeof priority === 'string' && /** @type {readonly string[]} */ (TRACK_PRIORITIES).includes(priority)) {
    return /** @type {TrackPriority} */ (priority);
  }
  throw new RangeError(`priority must be one of ${JSON.stringify([...TRACK_PRIORITIES, ...(nullable ? [null] : [])])}`);
}

/** @typedef {(...args: any[]) => void} Handler */

/** A tiny event emitter (on / once / off / emit), like Node's. */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Handler>>} */
    this._handlers = new Map();
  }
  /**
   * @param {string} event
   * @param {Handler} handler
   * @returns {this}
   */
  on(event, handler) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(handler);
    return this;
  }
  /**
   * @param {string} event
   * @param {Handler} handler
   * @returns {this}
   */
  once(event, handler) {
    /** @type {Handler} */
    const wrapped = (...args) => {
      this.off(event, wrapped);
      handler(...args);
    };
    return this.on(event, wrapped);
  }
  /**
   * @param {string} event
   * @param {Handler} handler
   * @returns {this}
   */
  off(event, handler) {
    const set = this._handlers.get(event);
    if (set) set.delete(handler);
    return this;
  }
  /**
   * @param {string} event
   * @param {...any} args
   * @returns {boolean} whether anyone listens
   */
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
  /**
   * @param {number} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'EdgeVideoError';
    this.code = code;
    /** The server refused (no point in trying again), rather than the link failing. */
    this.fromServer = false;
  }
}

/**
 * @param {MediaStreamTrack} track
 * @param {HTMLMediaElement} [element] default: a new <video> or <audio>
 * @returns {HTMLMediaElement}
 */
function attachElement(track, element) {
  const el = element || document.createElement(track.kind === 'video' ? 'video' : 'audio');
  el.autoplay = true;
  /** @type {HTMLVideoElement} */ (el).playsInline = true; // (an audio element ignores it)
  if (track.kind === 'video') el.muted = true; // video elements never play sound here
  el.srcObject = new MediaStream([track]);
  const played = el.play();
  if (played && played.catch) played.catch(() => {}); // autoplay may need a gesture
  return el;
}

/** A track this browser publishes: wraps a MediaStreamTrack; enable()/disable() mute it. */
export class LocalTrack extends Emitter {
  /**
   * @param {MediaStreamTrack} mediaStreamTrack
   * @param {string} name
   * @param {Publisher | null} [publisher] the room's, once it publishes the track
   */
  constructor(mediaStreamTrack, name, publisher = null) {
    super();
    this.mediaStreamTrack = mediaStreamTrack;
    this.kind = /** @type {'audio' | 'video'} */ (mediaStreamTrack.kind);
    this.name = name;
    this.id = mediaStreamTrack.id;
    /** @type {string | null} set when the server confirms the publication */
    this.sid = null;
    this._publisher = publisher;
    /** @type {TrackPriority} what subscribers give it unless they set their own */
    this.priority = 'standard';
  }
  get isEnabled() {
    return this.mediaStreamTrack.enabled;
  }
  /**
   * Twilio's `LocalTrackPublication.setPriority`: the priority subscribers give this track
   * when their downlink is short (`low`, `standard`, `high`).
   * @param {TrackPriority} priority
   * @returns {this}
   * @throws {RangeError}
   */
  setPriority(priority) {
    this.priority = /** @type {TrackPriority} */ (checkPriority(priority, false));
    if (this.sid && this._publisher) this._publisher.setPriority(this.sid, this.priority);
    return this;
  }
  /**
   * Mute (false) or unmute (true); the others get trackDisabled / trackEnabled.
   * @param {boolean} [enabled]
   * @returns {this}
   */
  enable(enabled = true) {
    if (this.mediaStreamTrack.enabled === enabled) return this;
    this.mediaStreamTrack.enabled = enabled;
    if (this.sid && this._publisher) this._publisher.setEnabled(this.sid, enabled);
    this.emit(enabled ? 'enabled' : 'disabled', this);
    return this;
  }
  disable() {
    return this.enable(false);
  }
  /** @param {HTMLMediaElement} [element] */
  attach(element) {
    return attachElement(this.mediaStreamTrack, element);
  }
  /**
   * Capture again with `constraints` (e.g. another device) and send the new capture under the
   * same publication, like twilio-video's restart(). Emits `restarted`: re-attach elements.
   * @param {boolean | MediaTrackConstraints} [constraints]
   * @returns {Promise<this>}
   */
  async restart(constraints = true) {
    const previous = this.mediaStreamTrack;
    const ask = () => navigator.mediaDevices.getUserMedia({ [this.kind]: constraints });
    let stream;
    try {
      stream = await ask();
    } catch {
      // Some devices (phones' cameras) capture once at a time: free this one, ask again.
      previous.stop();
      stream = await ask();
    }
    const next = stream.getTracks()[0];
    next.enabled = previous.enabled;
    if (this._publisher) await this._publisher.replace(previous, next);
    this.mediaStreamTrack = next;
    previous.stop();
    this.emit('restarted', this);
    return this;
  }
  stop() {
    this.mediaStreamTrack.stop();
    this.emit('stopped', this);
  }
}

let dataTrackCount = 0;

/**
 * @param {string | Blob | ArrayBuffer | ArrayBufferView} data
 * @returns {number} bytes on the wire
 */
function messageSize(data) {
  if (typeof data === 'string') return new TextEncoder().encode(data).length;
  if (typeof Blob !== 'undefined' && data instanceof Blob) return data.size;
  return /** @type {ArrayBuffer | ArrayBufferView} */ (data).byteLength;
}

/**
 * @param {ChannelInfo} info
 * @returns {RTCDataChannelInit}
 */
function channelOptions(info) {
  /** @type {RTCDataChannelInit} */
  const options = { negotiated: true, id: info.id, ordered: info.ordered !== false };
  if (info.max_retransmits !== null && info.max_retransmits !== undefined) options.maxRetransmits = info.max_retransmits;
  if (info.max_packet_life_time !== null && info.max_packet_life_time !== undefined) options.maxPacketLifeTime = info.max_packet_life_time;
  return options;
}

/**
 * @typedef {object} DataTrackOptions
 * @property {string} [name] default: the track's id
 * @property {boolean} [ordered] default true
 * @property {number | null} [maxRetransmits] makes the track lossy
 * @property {number | null} [maxPacketLifeTime] milliseconds; makes the track lossy
 */

/**
 * A data track this browser publishes, like Twilio's LocalDataTrack: `send()` strings or
 * binary messages (up to 16 KiB) once published. Reliable and ordered unless
 * `maxRetransmits` or `maxPacketLifeTime` (ms) is given; `ordered: false` lets messages
 * overtake each other. Messages sent before the track is published are dropped.
 */
export class LocalDataTrack extends Emitter {
  /** @param {DataTrackOptions} [options] */
  constructor(options = {}) {
    super();
    if (options.maxRetransmits != null && options.maxPacketLifeTime != null) {
      throw new TypeError('give maxRetransmits or maxPacketLifeTime, not both');
    }
    dataTrackCount += 1;
    /** @type {'data'} */
    this.kind = 'data';
    this.id = `data${dataTrackCount}-${Math.random().toString(36).slice(2, 10)}`;
    this.name = options.name || this.id;
    this.ordered = options.ordered !== false;
    this.maxRetransmits = options.maxRetransmits ?? null;
    this.maxPacketLifeTime = options.maxPacketLifeTime ?? null;
    this.maxMessageBytes = PROTOCOL.DEFAULT_MAX_DATA_MESSAGE_BYTES;
    /** @type {string | null} set when the server confirms the publication */
    this.sid = null;
    /** @type {RTCDataChannel | null} */
    this._channel = null;
  }
  get reliable() {
    return this.maxRetransmits === null && this.maxPacketLifeTime === null;
  }
  get isEnabled() {
    return true;
  }
  /**
   * Send to every subscriber; false when not published. Throws over the size limit.
   * @param {string | Blob | ArrayBuffer | ArrayBufferView<ArrayBuffer>} data
   * @returns {boolean}
   */
  send(data) {
    const size = messageSize(data);
    if (size > this.maxMessageBytes) {
      throw new EdgeVideoError(PROTOCOL.CODE.INVALID_CLIENT_MESSAGE, `a data message of ${size} bytes is over the ${this.maxMessageBytes}-byte limit`);
    }
    if (!this._channel || this._channel.readyState !== 'open') return false;
    this._channel.send(/** @type {any} */ (data)); // lib.dom's overloads of send() take no union
    return true;
  }
  /** @returns {TrackRequest} this track's entry in `publish` */
  _request() {
    /** @type {TrackRequest} */
    const request = { client_id: this.id, kind: 'data', name: this.name, ordered: this.ordered };
    if (this.maxRetransmits !== null) request.max_retransmits = this.maxRetransmits;
    if (this.maxPacketLifeTime !== null) request.max_packet_life_time = this.maxPacketLifeTime;
    return request;
  }
  /**
   * Open this side of the channel the server announced in `published`.
   * @param {RTCPeerConnection} pc
   * @param {ChannelInfo} info
   */
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
  /**
   * @param {RemoteTrackPublication} publication
   * @param {RTCPeerConnection} pc
   * @param {ChannelInfo} info the channel `track-subscribed` announced
   */
  constructor(publication, pc, info) {
    super();
    this.sid = publication.trackSid;
    this.name = publication.trackName;
    /** @type {'data'} */
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
  /**
   * Data tracks have nothing to render: kept so code can treat every track alike.
   * @returns {HTMLMediaElement[]}
   */
  detach() {
    this._channel.close();
    return [];
  }
}

/** A publication of a remote participant; `track` is set while subscribed. */
export class RemoteTrackPublication extends Emitter {
  /** @param {TrackInfo} info */
  constructor(info) {
    super();
    this.trackSid = info.sid;
    this.trackName = info.name;
    this.kind = info.kind;
    this.isTrackEnabled = info.enabled !== false;
    /** @type {RemoteTrack | RemoteDataTrack | null} */
    this.track = null;
    /** @type {TrackPriority} the priority its publisher gave it */
    this.publishPriority = 'standard';
    /** Whether the server stopped sending the subscribed track (bandwidth or our request). */
    this.isTrackSwitchedOff = false;
  }
  get isSubscribed() {
    return this.track !== null;
  }
}

/** A remote track being received: `attach()` returns a playing <video>/<audio> element. */
export class RemoteTrack extends Emitter {
  /**
   * @param {RemoteTrackPublication} publication
   * @param {MediaStreamTrack} mediaStreamTrack
   * @param {Subscriber} subscriber the room's
   */
  constructor(publication, mediaStreamTrack, subscriber) {
    super();
    this.sid = publication.trackSid;
    this.name = publication.trackName;
    this.kind = /** @type {'audio' | 'video'} */ (publication.kind); // data: RemoteDataTrack
    this.mediaStreamTrack = mediaStreamTrack;
    this._publication = publication;
    this._subscriber = subscriber;
    /** @type {Map<HTMLMediaElement, ResizeObserver>} */
    this._observers = new Map();
    /** @type {[number, number] | null} */
    this._lastSize = null;
    /** @type {TrackPriority | null} this subscriber's priority (null: the publisher's) */
    this.priority = null;
    /** Whether the server stopped sending this track; `switchedOff` / `switchedOn` tell. */
    this.isSwitchedOff = false;
    /** @type {string | null} why it is switched off (`network-congestion`, ...) */
    this.switchOffReason = null;
    this._switchedOffByClient = false;
  }
  get isEnabled() {
    return this._publication.isTrackEnabled;
  }
  /**
   * Twilio's `RemoteVideoTrack.setPriority`: this subscriber's priority for the track, or
   * null for the publisher's. Lower-priority tracks lose layers, then are switched off,
   * first when the downlink is short. (No effect on audio, which always gets through.)
   * @param {TrackPriority | null} priority
   * @returns {this}
   * @throws {RangeError}
   */
  setPriority(priority) {
    const checked = checkPriority(priority, true);
    if (checked !== this.priority) {
      this.priority = checked;
      this._subscriber.setPriority(this.sid, checked);
    }
    return this;
  }
  /**
   * Ask the server to stop sending this video track (`clientTrackSwitchOffControl:
   * 'manual'` only, as with Twilio).
   * @returns {this}
   */
  switchOff() {
    this._manual('clientTrackSwitchOffControl', 'switchOff');
    this._switch(true);
    return this;
  }
  /** Ask the server to send a track switched off with `switchOff()` again. */
  switchOn() {
    this._manual('clientTrackSwitchOffControl', 'switchOn');
    this._switch(false);
    return this;
  }
  /**
   * Set the render size the layer is chosen by (`contentPreferencesMode: 'manual'` only).
   * @param {{renderDimensions?: {width: number, height: number}}} preferences
   * @returns {this}
   */
  setContentPreferences(preferences) {
    this._manual('contentPreferencesMode', 'setContentPreferences');
    const dims = preferences && preferences.renderDimensions;
    if (dims) this._sendRenderSize(Math.round(dims.width), Math.round(dims.height));
    return this;
  }
  /**
   * @param {'clientTrackSwitchOffControl' | 'contentPreferencesMode'} option
   * @param {string} method
   */
  _manual(option, method) {
    if (this._subscriber.profile()[option] !== 'manual') {
      throw new Error(`Invalid state. You can call ${method} only when bandwidthProfile.video.${option} is set to "manual"`);
    }
  }
  /** @param {boolean} off */
  _switch(off) {
    if (this.kind !== 'video' || this._switchedOffByClient === off) return;
    if (this._publication.track !== this) return; // unsubscribed meanwhile
    this._switchedOffByClient = off;
    this._subscriber.setSwitchedOff(this.sid, off);
  }
  /**
   * The server switched the track off or on (Room calls this).
   * @param {boolean} off
   * @param {string | null} reason
   */
  _setSwitchedOff(off, reason) {
    if (this.isSwitchedOff === off) return false;
    this.isSwitchedOff = off;
    this.switchOffReason = off ? reason : null;
    this.emit(off ? 'switchedOff' : 'switchedOn', this, this.switchOffReason);
    return true;
  }
  /**
   * Attach to an element; for video, its rendered size chooses the layer received.
   * @param {HTMLMediaElement} [element]
   */
  attach(element) {
    const el = attachElement(this.mediaStreamTrack, element);
    if (this.kind === 'video' && typeof ResizeObserver !== 'undefined' && !this._observers.has(el)) {
      const observer = new ResizeObserver((entries) => {
        const box = entries[entries.length - 1].contentRect;
        if (this._subscriber.profile().contentPreferencesMode !== 'manual') this.setRenderSize(box.width, box.height);
      });
      observer.observe(el);
      this._observers.set(el, observer);
    }
    // clientTrackSwitchOffControl 'auto': a track shown again is switched back on
    if (this._subscriber.profile().clientTrackSwitchOffControl === 'auto') this._switch(false);
    return el;
  }
  /** @returns {HTMLMediaElement[]} the elements it was attached to */
  detach() {
    const elements = [...this._observers.keys()];
    for (const [el, observer] of this._observers) {
      observer.disconnect();
      el.srcObject = null;
    }
    this._observers.clear();
    // clientTrackSwitchOffControl 'auto': a video shown nowhere is not worth its bandwidth
    if (elements.length && this._subscriber.profile().clientTrackSwitchOffControl === 'auto') this._switch(true);
    return elements;
  }
  /**
   * Ask for the layer that best fits width x height CSS pixels (device pixels sent).
   * @param {number} width
   * @param {number} height
   */
  setRenderSize(width, height) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(width * ratio);
    const h = Math.round(height * ratio);
    this._sendRenderSize(w, h);
  }
  /**
   * @param {number} w device pixels
   * @param {number} h device pixels
   */
  _sendRenderSize(w, h) {
    if (this._lastSize && this._lastSize[0] === w && this._lastSize[1] === h) return;
    this._lastSize = [w, h];
    this._subscriber.requestRenderSize(this.sid, w, h);
  }
}

/**
 * Someone in the room: `identity`, `sid`, `state`, `tracks` (Map of publications), and
 * `networkQualityLevel` (0 to 5, null until the server said; asked for at connect).
 * Events: networkQualityLevelChanged(level, stats or null), as twilio-video.js's.
 * @template {RemoteTrackPublication | LocalTrack | LocalDataTrack} [T=RemoteTrackPublication]
 */
export class Participant extends Emitter {
  /** @param {ParticipantInfo} info */
  constructor(info) {
    super();
    this.sid = info.sid;
    this.identity = info.identity;
    /** @type {ParticipantState} */
    this.state = info.state || 'connected';
    /** @type {Map<string, T>} by track SID */
    this.tracks = new Map();
    /** @type {number | null} */
    this.networkQualityLevel = null;
    /** @type {Record<string, unknown> | null} send/recv levels and more, by verbosity */
    this.networkQualityStats = null;
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
 * @extends {Participant<LocalTrack | LocalDataTrack>}
 */
export class LocalParticipant extends Participant {
  /**
   * @param {ParticipantInfo} info
   * @param {Publisher} publisher the room's
   */
  constructor(info, publisher) {
    super(info);
    this._publisher = publisher;
  }

  /**
   * Publish a LocalDataTrack, LocalTrack or MediaStreamTrack; resolves with the track once
   * the server has published it (its `sid` set), rejects with an EdgeVideoError if refused.
   * `options.priority` (`low`, `standard`, `high`) is what subscribers give a media track.
   * @param {LocalTrack | LocalDataTrack | MediaStreamTrack} track
   * @param {{priority?: TrackPriority}} [options]
   * @returns {Promise<LocalTrack | LocalDataTrack>}
   */
  publishTrack(track, options = {}) {
    const publisher = this._publisher;
    const local = track instanceof LocalDataTrack || track instanceof LocalTrack ? track : new LocalTrack(track, track.kind === 'audio' ? 'microphone' : 'camera', publisher);
    if (local instanceof LocalTrack) {
      local._publisher = publisher;
      if (options.priority !== undefined) local.priority = /** @type {TrackPriority} */ (checkPriority(options.priority, false));
    }
    this.tracks.set(local.sid || local.id, local);
    return new Promise((resolve, reject) => {
      const ok = () => {
        local.off('publicationFailed', bad);
        resolve(local);
      };
      /** @param {EdgeVideoError} err */
      const bad = (err) => {
        local.off('published', ok);
        reject(err);
      };
      local.once('published', ok);
      local.once('publicationFailed', bad);
      publisher.publish(local);
    });
  }

  /**
   * Stop publishing a track; the others get trackUnpublished.
   * @template {LocalTrack | LocalDataTrack} T
   * @param {T} track
   * @returns {T}
   */
  unpublishTrack(track) {
    this._publisher.unpublish(track);
    this.tracks.delete(track.sid || track.id);
    if (track.kind === 'data') track.stop();
    track.sid = null;
    return track;
  }
}
