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
  EdgeVideoError,
  Emitter,
  LocalDataTrack,
  LocalParticipant,
  LocalTrack,
  Participant,
  RemoteDataTrack,
  RemoteTrack,
  RemoteTrackPublication,
} from './edge-video-tracks.js';

export {
  EdgeVideoError,
  Emitter,
  LocalDataTrack,
  LocalParticipant,
  LocalTrack,
  Participant,
  RemoteDataTrack,
  RemoteTrack,
  RemoteTrackPublication,
};

const PROTOCOL_VERSION = 1;
const ICE_GATHERING_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 20000;

/**
 * A connected room. Events: participantConnected, participantDisconnected,
 * participantReconnecting, participantReconnected, trackPublished, trackUnpublished,
 * trackSubscribed, trackUnsubscribed, trackEnabled, trackDisabled, reconnecting,
 * reconnected, disconnected(room, error).
 */
export class Room extends Emitter {
  constructor(options) {
    super();
    this._options = options;
    this.state = 'connecting';
    this.participants = new Map();
    this.localParticipant = null;
    this.sid = null;
    this.name = null;
    this._pc = null;
    this._ws = null;
    this._localTracks = [];
    this._pendingPublish = new Map();
    this._chain = Promise.resolve();
    this._timers = [];
  }

  /** Leave the room for good and stop the local tracks. */
  disconnect() {
    if (this.state === 'disconnected') return this;
    this._send({ type: 'leave' });
    this._finish(null);
    return this;
  }

  /** The peer connection's stats as an array of plain objects (RTCStatsReport values). */
  async getStats() {
    if (!this._pc) return [];
    const report = await this._pc.getStats();
    return [...report.values()];
  }

  // -- connection -------------------------------------------------------------------

  _open(join) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this._options.url, 'edge-sfu.v1');
      } catch (err) {
        reject(new EdgeVideoError(53000, `signaling connection failed: ${err.message}`));
        return;
      }
      this._ws = ws;
      let joined = false;
      const timer = setTimeout(() => {
        if (!joined) {
          ws.close();
          reject(new EdgeVideoError(53002, 'signaling connection timed out'));
        }
      }, CONNECT_TIMEOUT_MS);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', version: PROTOCOL_VERSION, ...join }));
      ws.onmessage = (event) => {
        if (ws !== this._ws) return;
        this._lastSeen = Date.now();
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!joined && msg.type === 'joined') {
          joined = true;
          clearTimeout(timer);
          resolve(msg);
        } else if (!joined && msg.type === 'disconnected') {
          clearTimeout(timer);
          const err = new EdgeVideoError(msg.code || 53000, msg.message || 'refused');
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
          reject(new EdgeVideoError(Number.isFinite(code) ? code : 53000, event.reason || 'signaling connection closed'));
        } else if (ws === this._ws) {
          this._linkLost();
        }
      };
    });
  }

  _send(message) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(message));
  }

  _startHeartbeat(msg) {
    this._stopHeartbeat();
    const interval = (msg.heartbeat_interval || 5) * 1000;
    const timeout = (msg.heartbeat_timeout || 12) * 1000;
    this._lastSeen = Date.now();
    this._heartbeat = setInterval(() => {
      if (Date.now() - this._lastSeen > timeout && this._ws) {
        const ws = this._ws;
        this._linkLost();
        ws.close();
        return;
      }
      this._send({ type: 'ping' });
    }, interval);
  }

  _stopHeartbeat() {
    if (this._heartbeat) clearInterval(this._heartbeat);
    this._heartbeat = null;
  }

  _linkLost() {
    if (this.state !== 'connected') return;
    this._ws = null;
    this._stopHeartbeat();
    this.state = 'reconnecting';
    this.emit('reconnecting', new EdgeVideoError(53001, 'signaling connection disconnected'));
    this._reconnect(Date.now() + this._reconnectWindow * 1000, 500);
  }

  async _reconnect(deadline, delay) {
    if (this.state !== 'reconnecting') return;
    if (Date.now() > deadline) {
      this._finish(new EdgeVideoError(53002, 'could not reconnect within the reconnect window'));
      return;
    }
    try {
      await this._open({ reconnect_token: this._reconnectToken });
    } catch (err) {
      if (!err.fromServer) {
        const wait = Math.min(delay, Math.max(0, deadline - Date.now()));
        setTimeout(() => this._reconnect(deadline, Math.min(delay * 2, 4000)), wait);
      } else {
        this._finish(err);
      }
    }
  }

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

  _onJoined(msg, isReconnect) {
    this.sid = msg.room.sid;
    this.name = msg.room.name;
    this._reconnectToken = msg.reconnect_token;
    this._reconnectWindow = msg.reconnect_window || 30;
    this._maxDataMessageBytes = msg.max_data_message_bytes || 16 * 1024;
    if (!this.localParticipant) {
      this.localParticipant = new LocalParticipant(msg.participant, this);
      for (const track of this._localTracks) this.localParticipant.tracks.set(track.id, track);
    }
    this._syncParticipants(msg.participants, isReconnect);
    if (isReconnect) this._syncSubscriptions(msg.subscriptions || []);
    this._startHeartbeat(msg);
    if (!this._pc) this._createPeerConnection(msg.ice_servers || []);
    if (isReconnect) {
      this.state = 'connected';
      this.emit('reconnected');
    } else {
      this.state = 'connected';
      this._publish(this._localTracks);
    }
  }

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

  // After a reconnect: subscription changes announced while away never arrived.
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

  _removeParticipant(participant) {
    for (const publication of [...participant.tracks.values()]) this._unpublished(participant, publication);
    this.participants.delete(participant.sid);
    participant.state = 'disconnected';
    participant.emit('disconnected', participant);
    this.emit('participantDisconnected', participant);
  }

  _unsubscribed(participant, publication) {
    const track = publication.track;
    if (!track) return;
    publication.track = null;
    track.detach();
    publication.emit('unsubscribed', track);
    participant.emit('trackUnsubscribed', track, publication);
    this.emit('trackUnsubscribed', track, publication, participant);
  }

  _unpublished(participant, publication) {
    this._unsubscribed(participant, publication);
    participant.tracks.delete(publication.trackSid);
    participant.emit('trackUnpublished', publication);
    this.emit('trackUnpublished', publication, participant);
  }

  _setEnabled(participant, publication, enabled) {
    if (publication.isTrackEnabled === enabled) return;
    publication.isTrackEnabled = enabled;
    const event = enabled ? 'trackEnabled' : 'trackDisabled';
    publication.emit(enabled ? 'trackEnabled' : 'trackDisabled');
    if (publication.track) publication.track.emit(enabled ? 'enabled' : 'disabled', publication.track);
    participant.emit(event, publication);
    this.emit(event, publication, participant);
  }

  _find(msg) {
    const participant = this.participants.get(msg.participant_sid);
    const publication = participant ? participant.tracks.get(msg.track_sid || (msg.track && msg.track.sid)) : null;
    return [participant, publication];
  }

  // -- messages ---------------------------------------------------------------------

  async _handle(msg) {
    const [participant, publication] = this._find(msg);
    switch (msg.type) {
      case 'joined':
        this._onJoined(msg, this.state === 'reconnecting');
        break;
      case 'ping':
        this._send({ type: 'pong', ref: msg.ref });
        break;
      case 'offer':
        await this._answer(msg);
        break;
      case 'published':
        this._published(msg);
        break;
      case 'publish-failed':
        this._publishFailed(msg);
        break;
      case 'participant-connected':
        if (!this.participants.has(msg.participant.sid)) {
          const p = new Participant(msg.participant);
          this.participants.set(p.sid, p);
          this.emit('participantConnected', p);
          for (const track of msg.participant.tracks || []) this._addPublication(p, track, true);
        }
        break;
      case 'participant-disconnected':
        if (participant) this._removeParticipant(participant);
        break;
      case 'participant-reconnecting':
      case 'participant-reconnected':
        if (participant) {
          const back = msg.type === 'participant-reconnected';
          participant.state = back ? 'connected' : 'reconnecting';
          participant.emit(back ? 'reconnected' : 'reconnecting');
          this.emit(back ? 'participantReconnected' : 'participantReconnecting', participant);
        }
        break;
      case 'track-published':
        if (participant) this._addPublication(participant, msg.track, true);
        break;
      case 'track-unpublished':
        if (participant && publication) this._unpublished(participant, publication);
        break;
      case 'track-enabled':
      case 'track-disabled':
        if (participant && publication) this._setEnabled(participant, publication, msg.type === 'track-enabled');
        break;
      case 'track-subscribed':
        if (participant && publication) this._subscribed(participant, publication, msg);
        break;
      case 'track-unsubscribed':
        if (participant && publication) this._unsubscribed(participant, publication);
        break;
      case 'room-completed':
        this.emit('roomCompleted', this);
        break;
      case 'disconnected':
        this._finish(msg.code ? new EdgeVideoError(msg.code, msg.message) : null);
        break;
      case 'error':
        console.warn(`edge-video: server error ${msg.code}: ${msg.message}`);
        this.emit('warning', new EdgeVideoError(msg.code, msg.message));
        break;
      default:
        break; // newer servers may send more; ignore what we do not know
    }
  }

  // `subscription`: a track-subscribed body, with `mid` (audio, video) or `channel` (data).
  _subscribed(participant, publication, subscription) {
    if (publication.track) return;
    let track;
    if (subscription.channel) {
      track = new RemoteDataTrack(publication, this._pc, subscription.channel);
    } else {
      const transceiver = this._pc.getTransceivers().find((t) => t.mid === subscription.mid);
      if (!transceiver) return;
      track = new RemoteTrack(publication, transceiver.receiver.track, this);
    }
    publication.track = track;
    publication.emit('subscribed', track);
    participant.emit('trackSubscribed', track, publication);
    this.emit('trackSubscribed', track, publication, participant);
  }

  // -- media ------------------------------------------------------------------------

  _createPeerConnection(iceServers) {
    // An explicit list (possibly empty): the browser contacts no server it was not given.
    this._pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this._pc.onconnectionstatechange = () => this.emit('mediaConnectionState', this._pc.connectionState);
  }

  _publish(tracks) {
    const requests = [];
    for (const track of tracks) {
      if (track.sid || this._pendingPublish.has(track.id)) continue;
      this._pendingPublish.set(track.id, track);
      if (track.kind === 'data') requests.push(track._request());
      else requests.push({ client_id: clientIdOf(track), kind: track.kind, name: track.name, enabled: track.isEnabled });
    }
    for (let i = 0; i < requests.length; i += 16) this._send({ type: 'publish', tracks: requests.slice(i, i + 16) });
  }

  _localByClientId(clientId) {
    for (const track of this._localTracks) {
      if (clientIdOf(track) === clientId) return track;
    }
    return null;
  }

  async _answer(msg) {
    const pc = this._pc;
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    for (const [mid, clientId] of Object.entries(msg.publish || {})) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      const local = this._localByClientId(clientId);
      if (!transceiver || !local) continue;
      await transceiver.sender.replaceTrack(local.mediaStreamTrack);
      transceiver.direction = 'sendonly';
    }
    await pc.setLocalDescription(await pc.createAnswer());
    for (const mid of Object.keys(msg.publish || {})) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      if (transceiver && transceiver.sender.track && transceiver.sender.track.kind === 'video') {
        await preferResolution(transceiver.sender, this._options.degradationPreference);
      }
    }
    await waitForIceGathering(pc);
    this._send({ type: 'answer', negotiation: msg.negotiation, sdp: pc.localDescription.sdp });
  }

  _published(msg) {
    for (const info of msg.tracks || []) {
      const local = this._localByClientId(info.client_id);
      if (!local) continue;
      this._pendingPublish.delete(local.id);
      local.sid = info.sid;
      if (local.kind === 'data' && info.channel) {
        local.maxMessageBytes = this._maxDataMessageBytes;
        local._open(this._pc, info.channel);
      }
      local.emit('published', local);
      if (this.localParticipant) {
        this.localParticipant.tracks.delete(local.id);
        this.localParticipant.tracks.set(info.sid, local);
        this.localParticipant.emit('trackPublished', local);
      }
      // A mute made before the server knew the track: tell it now.
      if (!local.isEnabled) this._send({ type: 'set-enabled', track_sid: info.sid, enabled: false });
    }
  }

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

// The publish request's handle for a local track (the protocol allows A-Za-z0-9_.:{}-).
function clientIdOf(track) {
  return track.id.replace(/[^A-Za-z0-9_.:{}-]/g, '').slice(0, 64) || track.kind;
}

// Every subscriber gets this picture as sent (the SFU never rescales): keep the size and
// give up frame rate when CPU or bandwidth is short, unless the caller chose otherwise.
async function preferResolution(sender, preference) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = preference || 'maintain-resolution';
    await sender.setParameters(params);
  } catch (err) {
    console.debug('edge-video: degradationPreference not applied', err);
  }
}

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
 * Join a room. `options`: `name` (room name; else the token's room grant), `url`
 * (signaling URL, default this page's host), `audio` / `video` (getUserMedia constraints
 * or booleans), `tracks` (LocalTrack, MediaStreamTrack or LocalDataTrack list, instead of audio/video),
 * `degradationPreference` (default 'maintain-resolution').
 * Resolves to a connected Room; rejects with an EdgeVideoError carrying a Twilio code.
 */
export async function connect(token, options = {}) {
  const room = new Room({ url: options.url || defaultUrl(), degradationPreference: options.degradationPreference });
  let mediaTracks = [];
  const dataTracks = (options.tracks || []).filter((t) => t instanceof LocalDataTrack);
  if (options.tracks) {
    mediaTracks = options.tracks.filter((t) => !(t instanceof LocalDataTrack)).map((t) => (t instanceof LocalTrack ? t.mediaStreamTrack : t));
  } else if (options.audio !== false || options.video !== false) {
    const constraints = { audio: options.audio ?? true, video: options.video ?? true };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    mediaTracks = stream.getTracks();
  }
  room._localTracks = mediaTracks.map((t) => new LocalTrack(t, t.kind === 'audio' ? 'microphone' : 'camera', room));
  room._localTracks.push(...dataTracks);
  try {
    const join = { token };
    if (options.name) join.room = options.name;
    await room._open(join);
    await room._chain; // 'joined' handled: the room has its participants
  } catch (err) {
    for (const track of room._localTracks) track.stop();
    room.state = 'disconnected';
    throw err;
  }
  return room;
}

/** Capture local media as LocalTracks (to preview before connecting). */
export async function createLocalTracks(constraints = { audio: true, video: true }) {
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  return stream.getTracks().map((t) => new LocalTrack(t, t.kind === 'audio' ? 'microphone' : 'camera', null));
}
