// @ts-check
// The join page: /join/{room}?token=JWT or ?invite=INVITE. Joins with camera and microphone
// and shows every participant in a grid. Names only ever go through textContent.
import { connect } from '/static/edge-video.js';
import { RoomMonitor } from '/static/room-monitor.js';

/**
 * @typedef {import('/static/edge-video.js').Room} Room
 * @typedef {import('/static/edge-video.js').Participant} Participant
 * @typedef {import('/static/edge-video.js').RemoteTrack} RemoteTrack
 * @typedef {import('/static/edge-video.js').RemoteDataTrack} RemoteDataTrack
 * @typedef {import('/static/edge-video.js').RemoteTrackPublication} RemoteTrackPublication
 * @typedef {import('/static/edge-video.js').EdgeVideoError} EdgeVideoError
 * @typedef {import('/static/edge-video.js').LocalParticipant} LocalParticipant
 * @typedef {import('/static/edge-video.js').LocalTrack} LocalTrack
 */

/**
 * An element of join.html (each one is there).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @type {Map<string, HTMLElement>} participant SID -> tile element */
const tiles = new Map();

/**
 * @param {string} state
 * @param {string} [detail]
 */
function setStatus(state, detail) {
  const el = $('status');
  el.textContent = detail ? `${state}: ${detail}` : state;
  el.className = `status ${state}`;
  document.body.dataset.state = state;
}

function roomFromPath() {
  const last = window.location.pathname.split('/').filter(Boolean).pop() || '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * @param {string} sid
 * @param {string} name
 * @param {boolean} local
 * @returns {HTMLElement}
 */
function makeTile(sid, name, local) {
  const template = /** @type {HTMLTemplateElement} */ ($('tile-template'));
  const tile = /** @type {HTMLElement} */ (/** @type {Element} */ (template.content.firstElementChild).cloneNode(true));
  tile.dataset.sid = sid;
  /** @type {Element} */ (tile.querySelector('.name')).textContent = local ? `${name} (you)` : name;
  if (local) tile.classList.add('local');
  $('grid').append(tile);
  tiles.set(sid, tile);
  return tile;
}

/**
 * @param {HTMLElement | undefined} tile
 * @param {string} kind
 * @param {boolean} enabled
 */
function setBadge(tile, kind, enabled) {
  if (kind === 'data') return; // data tracks have no picture or sound to badge
  /** @type {HTMLElement | null | undefined} */
  const badge = tile && tile.querySelector(kind === 'audio' ? '.mic-off' : '.cam-off');
  if (badge) badge.hidden = enabled;
}

/**
 * @param {Participant} participant
 * @param {RemoteTrack | RemoteDataTrack} track
 */
function showTrack(participant, track) {
  const tile = tiles.get(participant.sid);
  if (!tile || track.kind === 'data') return;
  const el = track.attach();
  el.dataset.trackSid = track.sid;
  /** @type {Element} */ (tile.querySelector('.media')).append(el);
  setBadge(tile, track.kind, track.isEnabled);
}

/** @param {Participant} participant */
function addParticipant(participant) {
  if (tiles.has(participant.sid)) return;
  makeTile(participant.sid, participant.identity, false);
  for (const publication of participant.tracks.values()) {
    setBadge(tiles.get(participant.sid), publication.kind, publication.isTrackEnabled);
    if (publication.track) showTrack(participant, publication.track);
  }
}

/** @param {Participant} participant */
function removeParticipant(participant) {
  const tile = tiles.get(participant.sid);
  if (tile) tile.remove();
  tiles.delete(participant.sid);
}

/** @param {Room} room */
function wireControls(room) {
  const me = /** @type {LocalParticipant} */ (room.localParticipant); // set once connected
  /**
   * @param {HTMLElement} button
   * @param {'audio' | 'video'} kind
   * @param {string} onText
   * @param {string} offText
   */
  const toggle = (button, kind, onText, offText) => {
    button.addEventListener('click', () => {
      const tracks = [...me.tracks.values()].filter(/** @returns {t is LocalTrack} */ (t) => t.kind === kind);
      const enable = button.getAttribute('aria-pressed') === 'true';
      for (const track of tracks) track.enable(enable);
      button.setAttribute('aria-pressed', String(!enable));
      button.textContent = enable ? onText : offText;
      setBadge(tiles.get(me.sid), kind, enable);
    });
  };
  toggle($('mic'), 'audio', 'Mute mic', 'Unmute mic');
  toggle($('camera'), 'video', 'Stop camera', 'Start camera');
  const monitor = new RoomMonitor(room, $('monitor'));
  $('monitor-toggle').addEventListener('click', () => {
    const show = !monitor.running;
    if (show) monitor.start();
    else monitor.stop();
    $('monitor').hidden = !show;
    $('monitor-toggle').setAttribute('aria-pressed', String(show));
  });
  room.on('disconnected', () => monitor.stop());
  $('leave').addEventListener('click', () => room.disconnect());
  window.addEventListener('pagehide', () => room.disconnect());
  $('controls').hidden = false;
}

/** @param {Room} room */
function wireRoom(room) {
  room.on('participantConnected', addParticipant);
  room.on('participantDisconnected', removeParticipant);
  room.on(
    'trackSubscribed',
    /**
     * @param {RemoteTrack | RemoteDataTrack} track
     * @param {RemoteTrackPublication} publication
     * @param {Participant} participant
     */
    (track, publication, participant) => showTrack(participant, track),
  );
  room.on('trackUnsubscribed', /** @param {RemoteTrack | RemoteDataTrack} track */ (track) => {
    for (const el of document.querySelectorAll('[data-track-sid]')) {
      if (!(el instanceof HTMLElement)) continue;
      if (el.dataset.trackSid === track.sid) el.remove();
    }
  });
  /** @typedef {(publication: RemoteTrackPublication, participant: Participant) => void} OnTrack */
  room.on('trackEnabled', /** @type {OnTrack} */ ((publication, participant) => setBadge(tiles.get(participant.sid), publication.kind, true)));
  room.on('trackDisabled', /** @type {OnTrack} */ ((publication, participant) => setBadge(tiles.get(participant.sid), publication.kind, false)));
  for (const event of ['participantReconnecting', 'participantReconnected']) {
    room.on(event, /** @param {Participant} participant */ (participant) => {
      /** @type {HTMLElement | null | undefined} */
      const badge = tiles.get(participant.sid)?.querySelector('.state');
      if (!badge) return;
      badge.hidden = event === 'participantReconnected';
      badge.textContent = 'reconnecting';
    });
  }
  const recording = /** @type {HTMLElement} */ (document.getElementById('recording'));
  const showRecording = () => { recording.hidden = !room.isRecording; };
  room.on('recordingStarted', showRecording);
  room.on('recordingStopped', showRecording);
  room.on('reconnecting', () => setStatus('reconnecting'));
  room.on('reconnected', () => setStatus('connected'));
  room.on('disconnected', /** @param {Room} _room @param {EdgeVideoError | null} error */ (_room, error) => {
    setStatus('disconnected', error ? `${error.message} (${error.code})` : 'left');
    $('controls').hidden = true;
  });
}

/**
 * @param {string} token
 * @param {string} roomName
 * @param {string} identity
 */
async function join(token, roomName, identity) {
  setStatus('connecting');
  let room;
  try {
    room = await connect(token, { name: roomName, audio: true, video: true });
  } catch (err) {
    const { message, code } = /** @type {EdgeVideoError} */ (err);
    setStatus('disconnected', `${message}${code ? ` (${code})` : ''}`);
    return;
  }
  /** @type {any} */ (window).edgeRoom = room; // for diagnostics and tests
  const me = /** @type {LocalParticipant} */ (room.localParticipant); // set once connected
  const local = makeTile(me.sid, me.identity || identity, true);
  for (const track of me.tracks.values()) {
    if (track.kind === 'video') /** @type {Element} */ (local.querySelector('.media')).append(track.attach());
  }
  wireRoom(room);
  for (const participant of room.participants.values()) addParticipant(participant);
  wireControls(room);
  setStatus('connected');
}

/**
 * @param {string} invite
 * @param {string} identity
 * @returns {Promise<{token: string, room?: string, identity: string}>}
 */
async function redeem(invite, identity) {
  const body = new URLSearchParams({ Invite: invite, Identity: identity });
  const response = await fetch('/v1/Invites/Redeem', { method: 'POST', body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `invite refused (${response.status})`);
  return data;
}

/**
 * @param {string} invite
 * @param {string} roomName
 */
function askName(invite, roomName) {
  const form = $('invite-form');
  form.hidden = false;
  setStatus('waiting', 'enter your name');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const identity = /** @type {HTMLInputElement} */ ($('identity')).value.trim();
    $('invite-error').textContent = '';
    try {
      const granted = await redeem(invite, identity);
      form.hidden = true;
      await join(granted.token, granted.room || roomName, granted.identity);
    } catch (err) {
      $('invite-error').textContent = /** @type {Error} */ (err).message;
    }
  });
}

function main() {
  const roomName = roomFromPath();
  $('room-name').textContent = roomName;
  document.title = `Join ${roomName}`;
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');
  const invite = params.get('invite');
  // Keep credentials out of the address bar, history and screenshots.
  window.history.replaceState(null, '', window.location.pathname);
  if (token) join(token, roomName, '');
  else if (invite) askName(invite, roomName);
  else setStatus('disconnected', 'this link has no token or invite');
}

main();
