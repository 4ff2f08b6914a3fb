// @ts-check
// edge-video.js: browser client of the edge appliance's SFU (signaling protocol v1).
//
// An ES module with no dependencies, shaped after twilio-video.js:
//
//   import { connect } from '/static/edge-video.js';
//   const room = await connect(token, { name: 'lobby', audio: true, video: true });
//   room.on('participantConnected', (p) => p.on('trackSubscribed', (t) => grid.append(t.attach())));
//
// Data tracks: `const chat = new LocalDataTrack({ name: 'chat' });` then
// `await room.localParticipant.publishTrack(chat); chat.send('hi');`; subscribers get a
// RemoteDataTrack in trackSubscribed and listen with `track.on('message', (data) => ...)`.
//
// Only standard APIs (WebSocket, RTCPeerConnection, getUserMedia, ResizeObserver), so any
// current browser works. The server makes every offer; this client only answers (see
// docs/signaling.md for why), so there is never offer glare.

import {
  BANDWIDTH_PROFILE_CHOICES,
  EdgeVideoError,
  Emitter,
  LocalDataTrack,
  LocalParticipant,
  LocalTrack,
  PROTOCOL,
  Participant,
  RemoteDataTrack,
  RemoteTrack,
  RemoteTrackPublication,
} from './edge-video-tracks.js';
import { UplinkGuard, applyWantedLayers, configureSender, isCameraVideo, layersFor, runningRids, videoPlan } from './edge-video-simulcast.js';

// Everything the tracks module exports is part of this module's API too.
export * from './edge-video-tracks.js';

/**
 * @typedef {import('./edge-video-tracks.js').ChannelInfo} ChannelInfo
 * @typedef {import('./edge-video-tracks.js').ClientMessage} ClientMessage
 * @typedef {import('./edge-video-tracks.js').JoinMessage} JoinMessage
 * @typedef {import('./edge-video-tracks.js').JoinedMessage} JoinedMessage
 * @typedef {import('./edge-video-tracks.js').OfferMessage} OfferMessage
 * @typedef {import('./edge-video-tracks.js').ParticipantInfo} ParticipantInfo
 * @typedef {import('./edge-video-tracks.js').PublishedMessage} PublishedMessage
 * @typedef {import('./edge-video-tracks.js').PublishFailedMessage} PublishFailedMessage
 * @typedef {import('./edge-video-tracks.js').Publisher} Publisher
 * @typedef {import('./edge-video-tracks.js').ServerMessage} ServerMessage
 * @typedef {import('./edge-video-tracks.js').Subscription} Subscription
 * @typedef {import('./edge-video-tracks.js').TrackInfo} TrackInfo
 * @typedef {import('./edge-video-tracks.js').TrackRequest} TrackRequest
 * @typedef {import('./edge-video-tracks.js').TrackPriority} TrackPriority
 * @typedef {import('./edge-video-tracks.js').BandwidthProfileInfo} BandwidthProfileInfo
 * @typedef {import('./edge-video-tracks.js').TrackSwitchMessage} TrackSwitchMessage
 * @typedef {import('./edge-video-tracks.js').LayerRequest} LayerRequest
 * @typedef {import('./edge-video-simulcast.js').PreferredVideoCodecs} PreferredVideoCodecs
 * @typedef {LocalTrack | LocalDataTrack} AnyLocalTrack
 * @typedef {'connecting' | 'connected' | 'reconnecting' | 'disconnected'} RoomState
 */
/**
 * @typedef {object} RoomOptions
 * @property {string} url the signaling WebSocket
 * @property {RTCDegradationPreference} [degradationPreference]
 * @property {PreferredVideoCodecs} [preferredVideoCodecs]
 * @property {VideoBandwidthProfile} [bandwidthVideo] `bandwidthProfile.video`, checked
 */
/**
 * Twilio's `bandwidthProfile.video` options (`maxSubscriptionBitrate` in bits per second).
 * @typedef {object} VideoBandwidthProfile
 * @property {'grid' | 'collaboration' | 'presentation'} [mode]
 * @property {number | null} [maxSubscriptionBitrate]
 * @property {TrackPriority} [dominantSpeakerPriority]
 * @property {'detected' | 'predicted' | 'disabled'} [trackSwitchOffMode]
 * @property {'auto' | 'manual'} [clientTrackSwitchOffControl]
 * @property {'auto' | 'manual'} [contentPreferencesMode]
 */
/**
 * @typedef {import('./edge-video-tracks.js').NetworkQualityVerbosity} NetworkQualityVerbosity
 * @typedef {NetworkQualityVerbosity | 0 | 1 | 2 | 3} VerbosityOption
 * @typedef {boolean | {local?: VerbosityOption, remote?: VerbosityOption}} NetworkQualityOption
 */

const { CLIENT, SERVER, CODE } = PROTOCOL;
const ICE_GATHERING_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 20000;
// Until `joined` gives the server's timers (seconds).
const DEFAULT_HEARTBEAT_INTERVAL = 5;
const DEFAULT_HEARTBEAT_TIMEOUT = 12;
const DEFAULT_RECONNECT_WINDOW = 30;
/** How often the browser tells the server its own estimate of its uplink (ms). */
const LINK_STATS_INTERVAL_MS = 2000;
/** How often the sender's estimate is read while the upper simulcast layers are on trial (ms). */
const TRIAL_WATCH_INTERVAL_MS = 500;

/**
 * A connected room. Events: participantConnected, participantDisconnected,
 * participantReconnecting, participantReconnected, trackPublished, trackUnpublished,
 * trackSubscribed, trackUnsubscribed, trackEnabled, trackDisabled, reconnecting,
 * reconnected, disconnected(room, error), trackSwitchedOff(track, publication, participant),
 * trackSwitchedOn(track, publication, participant),
 * trackPublishPriorityChanged(priority, publication, participant), and when asked for at
 * connect dominantSpeakerChanged(participant or null; the local participant when it speaks).
 */
export class Room extends Emitter {
  /** @param {RoomOptions} options */
  constructor(options) {
    super();
    this._options = options;
    /** @type {RoomState} */
    this.state = 'connecting';
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {LocalParticipant | null} */
    this.localParticipant = null;
    /** @type {Participant | LocalParticipant | null} asked for with `dominantSpeaker` */
    this.dominantSpeaker = null;
    /** @type {string | null} */
    this.sid = null;
    /** @type {string | null} */
    this.name = null;
    /** Whether the room is being recorded (Twilio's `Room.isRecording`). */
    this.isRecording = false;
    /** @type {RTCPeerConnection | null} */
    this._pc = null;
    /** @type {WebSocket | null} */
    this._ws = null;
    /** @type {AnyLocalTrack[]} */
    this._localTracks = [];
    /** @type {Map<string, AnyLocalTrack>} by local id: publish sent, no answer yet */
    this._pendingPublish = new Map();
    /** @type {Map<LocalTrack, LayerRequest[]>} simulcast layers announced per video track */
    this._layers = new Map();
    /** @type {Map<LocalTrack, Set<string>>} the rids the server last said someone receives */
    this._wantedLayers = new Map();
    /** @type {Map<LocalTrack, string>} what `sending-layers` last told the server, per track */
    this._runningSent = new Map();
    /** Whether this browser's uplink takes more than its lowest simulcast layers. */
    this._uplink = new UplinkGuard();
    /** @type {ReturnType<typeof setInterval> | null} */
    this._trialWatch = null;
    /** @type {Promise<void>} */
    this._chain = Promise.resolve();
    /** @type {ReturnType<typeof setInterval> | null} */
    this._heartbeat = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._linkStats = null;
    this._lastSeen = Date.now();
    this._reconnectToken = '';
    this._reconnectWindow = DEFAULT_RECONNECT_WINDOW;
    this._maxDataMessageBytes = PROTOCOL.DEFAULT_MAX_DATA_MESSAGE_BYTES;
    /**
     * What tracks and the local participant may ask of this room (nothing else of it).
     * @type {Publisher}
     */
    this._publisher = Object.freeze({
      /** @param {AnyLocalTrack} track */
      publish: (track) => {
        if (!this._localTracks.includes(track)) this._localTracks.push(track);
        this._publish([track]);
      },
      /** @param {AnyLocalTrack} track */
      unpublish: (track) => {
        this._localTracks = this._localTracks.filter((t) => t !== track);
        this._pendingPublish.delete(track.id);
        if (track instanceof LocalTrack) {
          this._detach(track);
          this._layers.delete(track);
          this._wantedLayers.delete(track);
        }
        if (track.sid) this._send({ type: CLIENT.UNPUBLISH, track_sid: track.sid });
      },
      /**
       * @param {string} trackSid
       * @param {boolean} enabled
       */
      setEnabled: (trackSid, enabled) => this._send({ type: CLIENT.SET_ENABLED, track_sid: trackSid, enabled }),
      /**
       * @param {string} trackSid
       * @param {TrackPriority} priority
       */
      setPriority: (trackSid, priority) => this._send({ type: CLIENT.SET_PUBLISH_PRIORITY, track_sid: trackSid, priority }),
      /**
       * @param {MediaStreamTrack} previous
       * @param {MediaStreamTrack} next
       */
      replace: async (previous, next) => {
        for (const transceiver of this._pc ? this._pc.getTransceivers() : []) {
          if (transceiver.sender.track === previous) await transceiver.sender.replaceTrack(next);
        }
      },
    });
    const video = options.bandwidthVideo || {};
    const profile = Object.freeze({
      clientTrackSwitchOffControl: video.clientTrackSwitchOffControl || 'auto',
      contentPreferencesMode: video.contentPreferencesMode || 'auto',
    });
    /**
     * What subscribed tracks may ask of this room.
     * @type {import('./edge-video-tracks.js').Subscriber}
     */
    this._subscriber = Object.freeze({
      /**
       * @param {string} trackSid
       * @param {number} width
       * @param {number} height
       */
      requestRenderSize: (trackSid, width, height) => {
        const max = PROTOCOL.MAX_DIMENSION;
        this._send({ type: CLIENT.SET_RENDER_SIZE, track_sid: trackSid, width: Math.max(0, Math.min(width, max)), height: Math.max(0, Math.min(height, max)) });
      },
      /**
       * @param {string} trackSid
       * @param {TrackPriority | null} priority
       */
      setPriority: (trackSid, priority) => this._send({ type: CLIENT.SET_PRIORITY, track_sid: trackSid, priority }),
      /**
       * @param {string} trackSid
       * @param {boolean} off
       */
      setSwitchedOff: (trackSid, off) => this._send({ type: CLIENT.SET_SWITCHED_OFF, track_sid: trackSid, switched_off: off }),
      profile: () => profile,
    });
  }

  /** Leave the room for good and stop the local tracks. */
  disconnect() {
    if (this.state === 'disconnected') return this;
    this._send({ type: CLIENT.LEAVE });
    this._finish(null);
    return this;
  }

  /**
   * The peer connection's stats as an array of plain objects (RTCStatsReport values).
   * @returns {Promise<any[]>}
   */
  async getStats() {
    if (!this._pc) return [];
    const report = await this._pc.getStats();
    return [...report.values()];
  }

  // -- connection -------------------------------------------------------------------

  /**
   * Open a socket and join (or come back); resolves with `joined`.
   * @param {Omit<JoinMessage, 'type' | 'version'>} join
   * @returns {Promise<JoinedMessage>}
   */
  _open(join) {
    return new Promise((resolve, reject) => {
      /** @type {WebSocket} */
      let ws;
      try {
        ws = new WebSocket(this._options.url, PROTOCOL.SUBPROTOCOL);
      } catch (err) {
        reject(new EdgeVideoError(CODE.SIGNALING_ERROR, `signaling connection failed: ${/** @type {Error} */ (err).message}`));
        return;
      }
      this._ws = ws;
      let joined = false;
      const timer = setTimeout(() => {
        if (!joined) {
          ws.close();
          reject(new EdgeVideoError(CODE.SIGNALING_TIMEOUT, 'signaling connection timed out'));
        }
      }, CONNECT_TIMEOUT_MS);
      ws.onopen = () => ws.send(JSON.stringify({ type: CLIENT.JOIN, version: PROTOCOL.VERSION, ...join }));
      ws.onmessage = (event) => {
        if (ws !== this._ws) return;
        this._lastSeen = Date.now();
        /** @type {ServerMessage} */
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!joined && msg.type === SERVER.JOINED) {
          joined = true;
          clearTimeout(timer);
          resolve(msg);
        } else if (!joined && msg.type === SERVER.DISCONNECTED) {
          clearTimeout(timer);
          const err = new EdgeVideoError(msg.code || CODE.SIGNALING_ERROR, msg.message || 'refused');
          err.fromServer = true;
          reject(err);
          return;
        }
        // One chain keeps messages in order: 'joined' sets up the peer connection that
        // the 'offer' right behind it needs.
        this._chain = this._chain.then(() => this._handle(msg)).catch((err) => console.error('edge-video:', err));
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        if (!joined) {
          const code = Number.parseInt(event.reason, 10);
          reject(new EdgeVideoError(Number.isFinite(code) ? code : CODE.SIGNALING_ERROR, event.reason || 'signaling connection closed'));
        } else if (ws === this._ws) {
          // After the messages already received: a 'disconnected' the server sent right
          // before closing (a completed room, a removal) ends the room; only a link that
          // closed without one is lost and worth reconnecting.
          this._chain = this._chain.then(() => {
            if (ws === this._ws) this._linkLost();
          });
        }
      };
    });
  }

  /** @param {ClientMessage} message */
  _send(message) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(message));
  }

  /** @param {JoinedMessage} msg */
  _startHeartbeat(msg) {
    this._stopHeartbeat();
    const interval = (msg.heartbeat_interval || DEFAULT_HEARTBEAT_INTERVAL) * 1000;
    const timeout = (msg.heartbeat_timeout || DEFAULT_HEARTBEAT_TIMEOUT) * 1000;
    this._lastSeen = Date.now();
    this._heartbeat = setInterval(() => {
      if (Date.now() - this._lastSeen > timeout && this._ws) {
        const ws = this._ws;
        this._linkLost();
        ws.close();
        return;
      }
      this._send({ type: CLIENT.PING });
    }, interval);
    this._linkStats = setInterval(() => void this._reportLink(), LINK_STATS_INTERVAL_MS);
  }

  _stopHeartbeat() {
    if (this._heartbeat) clearInterval(this._heartbeat);
    this._heartbeat = null;
    if (this._linkStats) clearInterval(this._linkStats);
    this._linkStats = null;
    if (this._trialWatch) clearInterval(this._trialWatch);
    this._trialWatch = null;
  }

  /**
   * Tell the server what this browser's sender estimates its uplink carries (the selected
   * candidate pair's availableOutgoingBitrate): the server judges the send side of network
   * quality by it, as what arrives understates the uplink when the encoder sends less.
   * Browsers that do not report it (Firefox) send nothing. The same estimate tells whether
   * the uplink takes more than the lowest simulcast layers (`UplinkGuard`).
   */
  async _reportLink() {
    const available = await this._sendEstimate();
    if (available === undefined) return;
    this._send({ type: CLIENT.LINK_STATS, available_send_bps: Math.round(available) });
    if (this._uplink.trialUntil === null && this._uplink.sample(available, Date.now())) await this._applyUplink();
  }

  /**
   * The selected candidate pair's availableOutgoingBitrate, if the browser reports it.
   * @returns {Promise<number | undefined>}
   */
  async _sendEstimate() {
    if (!this._pc || this.state !== 'connected') return undefined;
    /** @type {number | undefined} */
    let available;
    try {
      const report = await this._pc.getStats();
      /** @type {any} */
      let pair;
      report.forEach((/** @type {any} */ s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      if (!pair) {
        report.forEach((/** @type {any} */ s) => {
          if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
        });
      }
      available = pair ? pair.availableOutgoingBitrate : undefined;
    } catch {
      return undefined;
    }
    return typeof available === 'number' && Number.isFinite(available) && available >= 0 ? available : undefined;
  }

  /**
   * While the upper layers are tried again, watch the estimate closely: on a link that cannot
   * take them the trial floods it, and the sooner it ends the less it costs.
   */
  _watchTrial() {
    if (this._trialWatch) return;
    this._trialWatch = setInterval(async () => {
      if (this._uplink.trialUntil === null || !this._pc) {
        if (this._trialWatch) clearInterval(this._trialWatch);
        this._trialWatch = null;
        return;
      }
      const available = await this._sendEstimate();
      if (available !== undefined && this._uplink.sample(available, Date.now())) await this._applyUplink();
    }, TRIAL_WATCH_INTERVAL_MS);
  }

  /** Run the simulcast encodings as the uplink allows (`UplinkGuard`) and the server wants. */
  async _applyUplink() {
    if (!this._pc) return;
    const mode = this._uplink.mode;
    if (this._uplink.trialUntil !== null) this._watchTrial();
    console.debug(`edge-video: uplink ${mode}`);
    for (const [local, layers] of this._layers) {
      const transceiver = this._pc.getTransceivers().find((t) => t.sender.track === local.mediaStreamTrack);
      const wanted = this._wantedLayers.get(local) || null;
      if (transceiver) await applyWantedLayers(transceiver.sender, layers, wanted, mode, this._degradation(local), this._reportRunning(local));
    }
  }

  _linkLost() {
    if (this.state !== 'connected') return;
    this._ws = null;
    this._stopHeartbeat();
    this.state = 'reconnecting';
    this.emit('reconnecting', new EdgeVideoError(CODE.SIGNALING_DISCONNECTED, 'signaling connection disconnected'));
    this._reconnect(Date.now() + this._reconnectWindow * 1000, 500);
  }

  /**
   * @param {number} deadline epoch milliseconds
   * @param {number} delay before the next attempt, milliseconds
   */
  async _reconnect(deadline, delay) {
    if (this.state !== 'reconnecting') return;
    if (Date.now() > deadline) {
      this._finish(new EdgeVideoError(CODE.SIGNALING_TIMEOUT, 'could not reconnect within the reconnect window'));
      return;
    }
    try {
      await this._open({ reconnect_token: this._reconnectToken });
    } catch (err) {
      if (!(err instanceof EdgeVideoError) || !err.fromServer) {
        const wait = Math.min(delay, Math.max(0, deadline - Date.now()));
        setTimeout(() => this._reconnect(deadline, Math.min(delay * 2, 4000)), wait);
      } else {
        this._finish(err);
      }
    }
  }

  /** @param {EdgeVideoError | null} error */
  _finish(error) {
    if (this.state === 'disconnected') return;
    this.state = 'disconnected';
    this._stopHeartbeat();
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      setTimeout(() => ws.close(1000), 50); // let a queued 'leave' go out
    }
    if (this._pc) this._pc.close();
    for (const track of this._localTracks) track.stop();
    for (const participant of this.participants.values()) participant.state = 'disconnected';
    this.emit('disconnected', this, error);
  }

  // -- state ------------------------------------------------------------------------

  /**
   * @param {JoinedMessage} msg
   * @param {boolean} isReconnect
   */
  _onJoined(msg, isReconnect) {
    this.sid = msg.room.sid;
    this.name = msg.room.name;
    this._reconnectToken = msg.reconnect_token;
    this._reconnectWindow = msg.reconnect_window || DEFAULT_RECONNECT_WINDOW;
    this._maxDataMessageBytes = msg.max_data_message_bytes || PROTOCOL.DEFAULT_MAX_DATA_MESSAGE_BYTES;
    if (!this.localParticipant) {
      this.localParticipant = new LocalParticipant(msg.participant, this._publisher);
      for (const track of this._localTracks) this.localParticipant.tracks.set(track.id, track);
    }
    this._syncParticipants(msg.participants, isReconnect);
    if (isReconnect) this._syncSubscriptions(msg.subscriptions || []);
    this._startHeartbeat(msg);
    if (!this._pc) this._createPeerConnection(msg.ice_servers || []);
    if (isReconnect) {
      this.state = 'connected';
      this._resendRunning();
      this.emit('reconnected');
    } else {
      this.state = 'connected';
      this._publish(this._localTracks);
    }
  }

  /**
   * @param {ParticipantInfo[]} list
   * @param {boolean} emitEvents
   */
  _syncParticipants(list, emitEvents) {
    const seen = new Set();
    for (const info of list) {
      seen.add(info.sid);
      let participant = this.participants.get(info.sid);
      if (!participant) {
        participant = new Participant(info);
        this.participants.set(info.sid, participant);
        if (emitEvents) this.emit('participantConnected', participant);
      }
      participant.state = info.state || 'connected';
      const tracks = info.tracks || [];
      for (const track of tracks) this._addPublication(participant, track, emitEvents);
      // Publications that ended while we were away.
      const current = new Set(tracks.map((t) => t.sid));
      for (const publication of [...participant.tracks.values()]) {
        if (!current.has(publication.trackSid)) this._unpublished(participant, publication);
      }
    }
    for (const [sid, participant] of [...this.participants]) {
      if (!seen.has(sid)) this._removeParticipant(participant);
    }
  }

  /**
   * After a reconnect: subscription changes announced while away never arrived.
   * @param {Subscription[]} subscriptions
   */
  _syncSubscriptions(subscriptions) {
    const current = new Map(subscriptions.map((s) => [`${s.participant_sid}/${s.track_sid}`, s]));
    for (const participant of this.participants.values()) {
      for (const publication of [...participant.tracks.values()]) {
        const subscription = current.get(`${participant.sid}/${publication.trackSid}`);
        if (subscription === undefined) this._unsubscribed(participant, publication);
        else if (!publication.track) this._subscribed(participant, publication, subscription);
      }
    }
  }

  /**
   * @param {Participant} participant
   * @param {TrackInfo} info
   * @param {boolean} emitEvents
   */
  _addPublication(participant, info, emitEvents) {
    let publication = participant.tracks.get(info.sid);
    if (publication) {
      this._setEnabled(participant, publication, info.enabled !== false);
      return publication;
    }
    publication = new RemoteTrackPublication(info);
    participant.tracks.set(info.sid, publication);
    if (emitEvents) {
      participant.emit('trackPublished', publication);
      this.emit('trackPublished', publication, participant);
    }
    return publication;
  }

  /** @param {Participant} participant */
  _removeParticipant(participant) {
    for (const publication of [...participant.tracks.values()]) this._unpublished(participant, publication);
    this.participants.delete(participant.sid);
    participant.state = 'disconnected';
    participant.emit('disconnected', participant);
    this.emit('participantDisconnected', participant);
  }

  /**
   * @param {Participant} participant
   * @param {RemoteTrackPublication} publication
   */
  _unsubscribed(participant, publication) {
    const track = publication.track;
    if (!track) return;
    publication.track = null;
    publication.isTrackSwitchedOff = false;
    track.detach();
    publication.emit('unsubscribed', track);
    participant.emit('trackUnsubscribed', track, publication);
    this.emit('trackUnsubscribed', track, publication, participant);
  }

  /**
   * @param {Participant} participant
   * @param {RemoteTrackPublication} publication
   */
  _unpublished(participant, publication) {
    this._unsubscribed(participant, publication);
    participant.tracks.delete(publication.trackSid);
    participant.emit('trackUnpublished', publication);
    this.emit('trackUnpublished', publication, participant);
  }

  /**
   * @param {Participant} participant
   * @param {RemoteTrackPublication} publication
   * @param {boolean} enabled
   */
  _setEnabled(participant, publication, enabled) {
    if (publication.isTrackEnabled === enabled) return;
    publication.isTrackEnabled = enabled;
    const event = enabled ? 'trackEnabled' : 'trackDisabled';
    publication.emit(enabled ? 'trackEnabled' : 'trackDisabled');
    if (publication.track) publication.track.emit(enabled ? 'enabled' : 'disabled', publication.track);
    participant.emit(event, publication);
    this.emit(event, publication, participant);
  }

  /**
   * The participant and publication a message names (either may be missing).
   * @param {ServerMessage} msg
   * @returns {[Participant | undefined, RemoteTrackPublication | undefined]}
   */
  _find(msg) {
    const names = /** @type {{participant_sid?: string, track_sid?: string, track?: TrackInfo}} */ (msg);
    const { participant_sid: sid, track_sid: trackSid, track } = names;
    const participant = sid === undefined ? undefined : this.participants.get(sid);
    const publication = participant ? participant.tracks.get(trackSid || (track && track.sid) || '') : undefined;
    return [participant, publication];
  }

  // -- messages ---------------------------------------------------------------------

  /** @param {ServerMessage} msg */
  async _handle(msg) {
    const [participant, publication] = this._find(msg);
    switch (msg.type) {
      case SERVER.JOINED:
        this._onJoined(msg, this.state === 'reconnecting');
        break;
      case SERVER.PING:
        this._send({ type: CLIENT.PONG, ref: msg.ref });
        break;
      case SERVER.OFFER:
        await this._answer(msg);
        break;
      case SERVER.PUBLISHED:
        this._published(msg);
        break;
      case SERVER.PUBLISH_FAILED:
        this._publishFailed(msg);
        break;
      case SERVER.PARTICIPANT_CONNECTED:
        if (!this.participants.has(msg.participant.sid)) {
          const p = new Participant(msg.participant);
          this.participants.set(p.sid, p);
          this.emit('participantConnected', p);
          for (const track of msg.participant.tracks || []) this._addPublication(p, track, true);
        }
        break;
      case SERVER.PARTICIPANT_DISCONNECTED:
        if (participant) this._removeParticipant(participant);
        break;
      case SERVER.PARTICIPANT_RECONNECTING:
      case SERVER.PARTICIPANT_RECONNECTED:
        if (participant) {
          const back = msg.type === SERVER.PARTICIPANT_RECONNECTED;
          participant.state = back ? 'connected' : 'reconnecting';
          participant.emit(back ? 'reconnected' : 'reconnecting');
          this.emit(back ? 'participantReconnected' : 'participantReconnecting', participant);
        }
        break;
      case SERVER.TRACK_PUBLISHED:
        if (participant) this._addPublication(participant, msg.track, true);
        break;
      case SERVER.TRACK_UNPUBLISHED:
        if (participant && publication) this._unpublished(participant, publication);
        break;
      case SERVER.TRACK_ENABLED:
      case SERVER.TRACK_DISABLED:
        if (participant && publication) this._setEnabled(participant, publication, msg.type === SERVER.TRACK_ENABLED);
        break;
      case SERVER.TRACK_SUBSCRIBED:
        if (participant && publication) this._subscribed(participant, publication, msg);
        break;
      case SERVER.TRACK_UNSUBSCRIBED:
        if (participant && publication) this._unsubscribed(participant, publication);
        break;
      case SERVER.TRACK_SWITCHED_OFF:
      case SERVER.TRACK_SWITCHED_ON:
        if (participant && publication) this._switched(participant, publication, msg);
        break;
      case SERVER.TRACK_PRIORITY_CHANGED:
        if (participant && publication && publication.publishPriority !== msg.priority) {
          publication.publishPriority = msg.priority;
          publication.emit('publishPriorityChanged', msg.priority);
          participant.emit('trackPublishPriorityChanged', msg.priority, publication);
          this.emit('trackPublishPriorityChanged', msg.priority, publication, participant);
        }
        break;
      case SERVER.ROOM_COMPLETED:
        this.emit('roomCompleted', this);
        break;
      case SERVER.RECORDING_STARTED:
      case SERVER.RECORDING_STOPPED: {
        // Twilio's Room: `isRecording` and the recordingStarted / recordingStopped events,
        // on a change only (a resumed session is told the state again)
        const recording = msg.type === SERVER.RECORDING_STARTED;
        if (recording !== this.isRecording) {
          this.isRecording = recording;
          this.emit(recording ? 'recordingStarted' : 'recordingStopped', this);
        }
        break;
      }
      case SERVER.DISCONNECTED:
        this._finish(msg.code ? new EdgeVideoError(msg.code, msg.message) : null);
        break;
      case SERVER.SEND_LAYERS:
        await this._sendLayers(msg.track_sid, msg.rids || []);
        break;
      case SERVER.DOMINANT_SPEAKER:
        this._dominantSpeaker(msg.participant_sid);
        break;
      case SERVER.NETWORK_QUALITY:
        this._networkQuality(msg);
        break;
      case SERVER.ERROR:
        console.warn(`edge-video: server error ${msg.code}: ${msg.message}`);
        this.emit('warning', new EdgeVideoError(msg.code, msg.message));
        break;
      default:
        break; // newer servers may send more; ignore what we do not know
    }
  }

  /**
   * The server switched a subscribed track off or on: the events Twilio's SDK emits.
   * @param {Participant} participant
   * @param {RemoteTrackPublication} publication
   * @param {TrackSwitchMessage} msg
   */
  _switched(participant, publication, msg) {
    const track = publication.track;
    if (!(track instanceof RemoteTrack)) return;
    const off = msg.type === SERVER.TRACK_SWITCHED_OFF;
    if (!track._setSwitchedOff(off, msg.reason || null)) return;
    publication.isTrackSwitchedOff = off;
    const event = off ? 'trackSwitchedOff' : 'trackSwitchedOn';
    publication.emit(event, track);
    participant.emit(event, track, publication);
    this.emit(event, track, publication, participant);
  }

  /**
   * @param {Participant} participant
   * @param {RemoteTrackPublication} publication
   * @param {Subscription} subscription with `mid` (audio, video) or `channel` (data)
   */
  _subscribed(participant, publication, subscription) {
    if (publication.track) return;
    const pc = /** @type {RTCPeerConnection} */ (this._pc); // made on the first 'joined'
    let track;
    if (subscription.channel) {
      track = new RemoteDataTrack(publication, pc, subscription.channel);
    } else {
      const transceiver = pc.getTransceivers().find((t) => t.mid === subscription.mid);
      if (!transceiver) return;
      track = new RemoteTrack(publication, transceiver.receiver.track, this._subscriber);
    }
    publication.track = track;
    publication.emit('subscribed', track);
    participant.emit('trackSubscribed', track, publication);
    this.emit('trackSubscribed', track, publication, participant);
  }

  // -- media ------------------------------------------------------------------------

  /** @param {RTCIceServer[]} iceServers */
  _createPeerConnection(iceServers) {
    // An explicit list (possibly empty): the browser contacts no server it was not given.
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    pc.onconnectionstatechange = () => this.emit('mediaConnectionState', pc.connectionState);
    this._pc = pc;
  }

  /** @param {AnyLocalTrack[]} tracks */
  _publish(tracks) {
    /** @type {TrackRequest[]} */
    const requests = [];
    for (const track of tracks) {
      if (track.sid || this._pendingPublish.has(track.id)) continue;
      this._pendingPublish.set(track.id, track);
      if (track instanceof LocalDataTrack) requests.push(track._request());
      else {
        /** @type {TrackRequest} */
        const request = this._mediaRequest(track);
        if (track.priority !== 'standard') request.priority = track.priority;
        requests.push(request);
      }
    }
    const max = PROTOCOL.MAX_TRACKS_PER_MESSAGE;
    for (let i = 0; i < requests.length; i += max) this._send({ type: CLIENT.PUBLISH, tracks: requests.slice(i, i + max) });
  }

  /**
   * The publish request for an audio or video track; camera video gets the codec and
   * simulcast layers `preferredVideoCodecs` asks for.
   * @param {LocalTrack} track
   * @returns {TrackRequest}
   */
  _mediaRequest(track) {
    /** @type {TrackRequest} */
    const request = { client_id: clientIdOf(track), kind: track.kind, name: track.name, enabled: track.isEnabled };
    if (track.kind !== 'video') return request;
    const plan = videoPlan(this._options.preferredVideoCodecs);
    request.codec = plan.codec;
    const layers = layersFor(track.mediaStreamTrack, plan);
    this._layers.set(track, layers);
    if (layers.length) request.layers = layers;
    return request;
  }

  /**
   * `send-layers`: run only the encodings of `trackSid` someone receives.
   * @param {string} trackSid
   * @param {string[]} rids
   */
  async _sendLayers(trackSid, rids) {
    const local = this._localTracks.find((t) => t.sid === trackSid);
    if (!(local instanceof LocalTrack) || !this._pc) return;
    const wanted = new Set(rids);
    this._wantedLayers.set(local, wanted);
    const transceiver = this._pc.getTransceivers().find((t) => t.sender.track === local.mediaStreamTrack);
    if (transceiver) {
      await applyWantedLayers(transceiver.sender, this._layers.get(local) || [], wanted, this._uplink.mode, this._degradation(local), this._reportRunning(local));
    }
  }

  /**
   * Tell the server which of `local`'s simulcast layers run when that changes
   * (`sending-layers`): it moves the subscribers of a layer paused here to one that runs at
   * once, where it would otherwise wait for the paused layer's silence.
   * @param {LocalTrack} local
   * @returns {(rids: string[]) => void}
   */
  _reportRunning(local) {
    return (rids) => {
      if (!local.sid) return; // not published yet: nobody receives it
      const said = `${local.sid} ${rids.join(',')}`;
      if (this._runningSent.get(local) === said) return;
      this._runningSent.set(local, said);
      this._send({ type: CLIENT.SENDING_LAYERS, track_sid: local.sid, rids });
    };
  }

  /** After a reconnect: what runs now, in case a `sending-layers` was lost with the link. */
  _resendRunning() {
    this._runningSent.clear();
    if (!this._pc) return;
    for (const [local, layers] of this._layers) {
      const transceiver = this._pc.getTransceivers().find((t) => t.sender.track === local.mediaStreamTrack);
      if (transceiver && layers.length >= 2) {
        this._reportRunning(local)(runningRids(transceiver.sender.getParameters().encodings || [], layers));
      }
    }
  }

  /**
   * What a video track gives up first when short of bandwidth or CPU: camera video its
   * resolution and frame rate in turn (as twilio-video.js does), simulcast layers keeping the
   * big picture for those who can take it; a shared screen keeps its resolution (text stays
   * legible).
   * @param {LocalTrack} local
   * @returns {RTCDegradationPreference}
   */
  _degradation(local) {
    return isCameraVideo(local.mediaStreamTrack) ? this._options.degradationPreference || 'balanced' : 'maintain-resolution';
  }

  /**
   * @param {string} clientId
   * @returns {AnyLocalTrack | null}
   */
  _localByClientId(clientId) {
    for (const track of this._localTracks) {
      if (clientIdOf(track) === clientId) return track;
    }
    return null;
  }

  /**
   * Stop sending an unpublished track. Its transceiver stays: the server offers its m-line
   * (same mid) for our next publication of that kind, and `_answer` attaches that track there.
   * @param {LocalTrack} track
   */
  _detach(track) {
    if (!this._pc) return;
    for (const transceiver of this._pc.getTransceivers()) {
      if (transceiver.sender.track === track.mediaStreamTrack) {
        transceiver.sender.replaceTrack(null).catch(() => {}); // only fails once closed
      }
    }
  }

  /** @param {OfferMessage} msg */
  async _answer(msg) {
    const pc = /** @type {RTCPeerConnection} */ (this._pc); // made on the first 'joined'
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    for (const [mid, clientId] of Object.entries(msg.publish || {})) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      const local = this._localByClientId(clientId);
      if (!transceiver || !(local instanceof LocalTrack)) continue;
      await transceiver.sender.replaceTrack(local.mediaStreamTrack);
      transceiver.direction = 'sendonly';
    }
    await pc.setLocalDescription(await pc.createAnswer());
    for (const [mid, clientId] of Object.entries(msg.publish || {})) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      const local = this._localByClientId(clientId);
      if (transceiver && local instanceof LocalTrack && local.kind === 'video') {
        const layers = this._layers.get(local) || [];
        const wanted = this._wantedLayers.get(local) || null;
        await configureSender(transceiver.sender, layers, wanted, this._degradation(local), this._uplink.mode, this._reportRunning(local));
      }
    }
    // The offer says which layers are paused (a browser resets them from it); should a
    // `send-layers` have crossed it, what it said still holds.
    for (const [local, wanted] of this._wantedLayers) {
      const transceiver = pc.getTransceivers().find((t) => t.sender.track === local.mediaStreamTrack);
      if (transceiver) {
        await applyWantedLayers(transceiver.sender, this._layers.get(local) || [], wanted, this._uplink.mode, this._degradation(local), this._reportRunning(local));
      }
    }
    await waitForIceGathering(pc);
    const answer = /** @type {RTCSessionDescription} */ (pc.localDescription);
    this._send({ type: CLIENT.ANSWER, negotiation: msg.negotiation, sdp: answer.sdp });
  }

  /** @param {PublishedMessage} msg */
  _published(msg) {
    for (const info of msg.tracks || []) {
      const local = this._localByClientId(info.client_id);
      if (!local) continue;
      this._pendingPublish.delete(local.id);
      local.sid = info.sid;
      if (local instanceof LocalDataTrack && info.channel) {
        local.maxMessageBytes = this._maxDataMessageBytes;
        local._open(/** @type {RTCPeerConnection} */ (this._pc), info.channel);
      }
      local.emit('published', local);
      if (this.localParticipant) {
        this.localParticipant.tracks.delete(local.id);
        this.localParticipant.tracks.set(info.sid, local);
        this.localParticipant.emit('trackPublished', local);
      }
      // A mute or priority set before the server knew the track: tell it now.
      if (!local.isEnabled) this._send({ type: CLIENT.SET_ENABLED, track_sid: info.sid, enabled: false });
      if (local instanceof LocalTrack && local.priority !== 'standard') {
        this._send({ type: CLIENT.SET_PUBLISH_PRIORITY, track_sid: info.sid, priority: local.priority });
      }
    }
  }

  /**
   * The local participant or a remote one, by SID.
   * @param {string | null | undefined} sid
   * @returns {Participant | LocalParticipant | undefined}
   */
  _anyParticipant(sid) {
    if (!sid) return undefined;
    const me = this.localParticipant;
    return me && me.sid === sid ? me : this.participants.get(sid);
  }

  /** @param {string | null} sid */
  _dominantSpeaker(sid) {
    const speaker = sid ? this._anyParticipant(sid) : null;
    if (speaker === undefined) return; // not announced to us yet
    this.dominantSpeaker = speaker;
    this.emit('dominantSpeakerChanged', speaker);
  }

  /** @param {import('./edge-video-tracks.js').NetworkQualityMessage} msg */
  _networkQuality(msg) {
    const participant = this._anyParticipant(msg.participant_sid);
    if (!participant || typeof msg.level !== 'number') return;
    const { type: _type, participant_sid: _sid, level, ...more } = msg;
    participant.networkQualityLevel = level;
    participant.networkQualityStats = Object.keys(more).length ? more : null;
    participant.emit('networkQualityLevelChanged', level, participant.networkQualityStats);
  }

  /** @param {PublishFailedMessage} msg */
  _publishFailed(msg) {
    const local = this._localByClientId(msg.client_id);
    if (!local) return;
    this._pendingPublish.delete(local.id);
    this._localTracks = this._localTracks.filter((t) => t !== local);
    const error = new EdgeVideoError(msg.code, msg.message);
    local.emit('publicationFailed', error);
    if (this.localParticipant) {
      this.localParticipant.tracks.delete(local.id);
      this.localParticipant.emit('trackPublicationFailed', error, local);
    }
  }
}

/**
 * The publish request's handle for a local track (the protocol allows A-Za-z0-9_.:{}-).
 * @param {AnyLocalTrack} track
 * @returns {string}
 */
function clientIdOf(track) {
  return track.id.replace(/[^A-Za-z0-9_.:{}-]/g, '').slice(0, PROTOCOL.MAX_CLIENT_ID) || track.kind;
}

/**
 * @param {RTCPeerConnection} pc
 * @returns {Promise<void>}
 */
function waitForIceGathering(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      clearTimeout(timer);
      resolve();
    };
    // Host candidates come at once; a slow STUN/TURN server must not stall the answer.
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    }, ICE_GATHERING_TIMEOUT_MS);
    pc.addEventListener('icegatheringstatechange', done);
  });
}

function defaultUrl() {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/v1/signaling`;
}

/**
 * @typedef {object} ConnectOptions
 * @property {string} [name] room name; else the token's room grant
 * @property {string} [url] signaling URL, default this page's host
 * @property {boolean | MediaTrackConstraints} [audio]
 * @property {boolean | MediaTrackConstraints} [video]
 * @property {(LocalTrack | MediaStreamTrack | LocalDataTrack)[]} [tracks] instead of audio/video
 * @property {RTCDegradationPreference} [degradationPreference] camera video's, default 'balanced'
 * @property {PreferredVideoCodecs} [preferredVideoCodecs] default 'auto' (VP8, simulcast)
 * @property {boolean} [dominantSpeaker] emit Room dominantSpeakerChanged
 * @property {NetworkQualityOption} [networkQuality] emit networkQualityLevelChanged
 * @property {{video?: VideoBandwidthProfile}} [bandwidthProfile] how this subscriber's
 *   downlink is shared (Twilio's Network Bandwidth Profile API)
 */

/**
 * Check `bandwidthProfile` as twilio-video.js does (TypeError for a wrong type, RangeError
 * for an unknown value) and turn it into `join.bandwidth_profile`.
 * @param {unknown} bandwidthProfile
 * @returns {BandwidthProfileInfo | undefined}
 */
export function bandwidthProfilePayload(bandwidthProfile) {
  if (bandwidthProfile === undefined) return undefined;
  const isObject = (/** @type {unknown} */ v) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(bandwidthProfile)) throw new TypeError('options.bandwidthProfile must be an object');
  const video = /** @type {Record<string, unknown>} */ (bandwidthProfile).video;
  if (video === undefined) return {};
  if (!isObject(video)) throw new TypeError('options.bandwidthProfile.video must be an object');
  const v = /** @type {Record<string, unknown>} */ (video);
  /** @type {Record<string, unknown>} */
  const out = {};
  const snake = (/** @type {string} */ name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  for (const [name, values] of Object.entries(BANDWIDTH_PROFILE_CHOICES)) {
    if (v[name] === undefined) continue;
    if (typeof v[name] !== 'string') throw new TypeError(`options.bandwidthProfile.video.${name} must be a string`);
    if (!/** @type {readonly string[]} */ (values).includes(/** @type {string} */ (v[name]))) {
      throw new RangeError(`options.bandwidthProfile.video.${name} must be one of ${values.join(', ')}`);
    }
    out[snake(name)] = v[name];
  }
  const bitrate = v.maxSubscriptionBitrate;
  if (bitrate !== undefined && bitrate !== null) {
    if (typeof bitrate !== 'number' || !Number.isFinite(bitrate)) throw new TypeError('options.bandwidthProfile.video.maxSubscriptionBitrate must be a number');
    if (bitrate <= 0) throw new RangeError('options.bandwidthProfile.video.maxSubscriptionBitrate must be above 0');
    out.max_subscription_bitrate = Math.round(bitrate);
  }
  for (const name of ['maxTracks', 'renderDimensions']) {
    if (v[name] !== undefined) console.warn(`edge-video: bandwidthProfile.video.${name} is deprecated and ignored`);
  }
  return { video: /** @type {BandwidthProfileInfo['video']} */ (out) };
}

/**
 * Join a room. `options`: `name` (room name; else the token's room grant), `url`
 * (signaling URL, default this page's host), `audio` / `video` (getUserMedia constraints
 * or booleans), `tracks` (LocalTrack, MediaStreamTrack or LocalDataTrack list, instead of audio/video),
 * `degradationPreference` (camera video's, default 'balanced'), `preferredVideoCodecs`
 * (`'auto'`, the default: VP8 in simulcast layers, the ones nobody receives paused; or a
 * list as twilio-video.js takes it: `['H264']`, `[{codec: 'VP8', simulcast: false}]`).
 * `dominantSpeaker: true` and `networkQuality` (`true`, or `{local, remote}` with
 * twilio-video.js's verbosity 0 to 3 or its names `none`, `minimal`, `moderate`,
 * `detailed`) ask for dominantSpeakerChanged and networkQualityLevelChanged.
 * `bandwidthProfile` ({video: {mode, maxSubscriptionBitrate, dominantSpeakerPriority,
 * trackSwitchOffMode, clientTrackSwitchOffControl, contentPreferencesMode}}, as Twilio's; a
 * bad one throws a TypeError or RangeError before anything is sent).
 * Resolves to a connected Room; rejects with an EdgeVideoError carrying a Twilio code.
 * @param {string} token
 * @param {ConnectOptions} [options]
 * @returns {Promise<Room>}
 */
export async function connect(token, options = {}) {
  const profile = bandwidthProfilePayload(options.bandwidthProfile);
  const room = new Room({
    url: options.url || defaultUrl(),
    degradationPreference: options.degradationPreference,
    preferredVideoCodecs: options.preferredVideoCodecs,
    bandwidthVideo: options.bandwidthProfile && options.bandwidthProfile.video,
  });
  /** @type {MediaStreamTrack[]} */
  let mediaTracks = [];
  const dataTracks = (options.tracks || []).filter((t) => t instanceof LocalDataTrack);
  if (options.tracks) {
    const media = options.tracks.filter(/** @returns {t is LocalTrack | MediaStreamTrack} */ (t) => !(t instanceof LocalDataTrack));
    mediaTracks = media.map((t) => (t instanceof LocalTrack ? t.mediaStreamTrack : t));
  } else if (options.audio !== false || options.video !== false) {
    const constraints = { audio: options.audio ?? true, video: options.video ?? true };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    mediaTracks = stream.getTracks();
  }
  room._localTracks = mediaTracks.map((t) => new LocalTrack(t, t.kind === 'audio' ? 'microphone' : 'camera', room._publisher));
  room._localTracks.push(...dataTracks);
  try {
    /** @type {Omit<JoinMessage, 'type' | 'version'>} */
    const join = { token };
    if (options.name) join.room = options.name;
    if (options.dominantSpeaker) join.dominant_speaker = true;
    if (options.networkQuality) join.network_quality = networkQualityRequest(options.networkQuality);
    if (profile) join.bandwidth_profile = profile;
    await room._open(join);
    await room._chain; // 'joined' handled: the room has its participants
  } catch (err) {
    for (const track of room._localTracks) track.stop();
    room.state = 'disconnected';
    throw err;
  }
  return room;
}

/**
 * The `join.network_quality` of a `networkQuality` option (twilio-video.js's defaults:
 * local minimal, remote none). A verbosity the protocol does not know is sent as it is,
 * for the server to refuse with a clear error.
 * @param {NetworkQualityOption} option
 * @returns {{local?: NetworkQualityVerbosity, remote?: NetworkQualityVerbosity}}
 */
function networkQualityRequest(option) {
  if (option === true) return {};
  const names = PROTOCOL.NETWORK_QUALITY_VERBOSITY;
  /** @param {VerbosityOption | undefined} value */
  const name = (value) => /** @type {NetworkQualityVerbosity} */ (typeof value === 'number' ? names[value] ?? String(value) : value);
  /** @type {{local?: NetworkQualityVerbosity, remote?: NetworkQualityVerbosity}} */
  const out = {};
  if (typeof option === 'object' && option.local !== undefined) out.local = name(option.local);
  if (typeof option === 'object' && option.remote !== undefined) out.remote = name(option.remote);
  return out;
}

/**
 * Capture local media as LocalTracks (to preview before connecting).
 * @param {MediaStreamConstraints} [constraints]
 * @returns {Promise<LocalTrack[]>}
 */
export async function createLocalTracks(constraints = { audio: true, video: true }) {
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  return stream.getTracks().map((t) => new LocalTrack(t, t.kind === 'audio' ? 'microphone' : 'camera', null));
}
