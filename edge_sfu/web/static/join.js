// @ts-check
// The join page: /join/{room}?token=JWT or ?invite=INVITE.
//
// Before joining: a preview of the camera, the microphone's level, the choice of camera,
// microphone and speaker, the guest's name for an invite, and camera/microphone on or off;
// when the browser refuses a device, the page says so and offers a way in without it.
// In the call: a stage of tiles that always fits (join-stage.js), mute, camera, screen share
// (a second video track named 'screen'), chat on a data track (join-chat.js), the people in
// the room, device switching, and a banner while the link to the room is being restored.
// The credential is kept for the tab (sessionStorage) and the guest key for the browser
// (localStorage), so Leave, a reload or a closed tab can come back with the same name.
// Names only ever go through textContent.
import { connect, LocalTrack } from '/static/edge-video.js';
import { RoomMonitor } from '/static/room-monitor.js';
import { Stage } from '/static/join-stage.js';
import { Chat } from '/static/join-chat.js';
import { LevelMeter, SpeechIndicator, advice, canChooseSpeaker, capture, constraintsFor, fillSelect, listDevices, problemOf, routeAudio } from '/static/join-media.js';

/**
 * @typedef {import('/static/edge-video.js').Room} Room
 * @typedef {import('/static/edge-video.js').Participant} Participant
 * @typedef {import('/static/edge-video.js').RemoteTrack} RemoteTrack
 * @typedef {import('/static/edge-video.js').RemoteDataTrack} RemoteDataTrack
 * @typedef {import('/static/edge-video.js').RemoteTrackPublication} RemoteTrackPublication
 * @typedef {import('/static/edge-video.js').EdgeVideoError} EdgeVideoError
 * @typedef {import('/static/edge-video.js').LocalParticipant} LocalParticipant
 * @typedef {import('/static/edge-video.js').LocalDataTrack} LocalDataTrack
 * @typedef {{token?: string, invite?: string}} Credential
 */

/**
 * An element of join.html (each one is there).
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));
const select = (/** @type {string} */ id) => /** @type {HTMLSelectElement} */ ($(id));

/** Video tracks with this name (or starting with it) are shared screens, as Twilio's apps name them. */
const SCREEN = 'screen';
const CREDENTIAL_KEY = `edge-join:${window.location.pathname}`;
const GUEST_KEY = 'edge-join:guest-key';
const NAME_KEY = 'edge-join:name';
const DEVICES_KEY = 'edge-join:devices';

const stage = new Stage($('stage'), /** @type {HTMLTemplateElement} */ ($('tile-template')));
const chat = new Chat(/** @type {HTMLOListElement} */ ($('chat-log')), $('unread'), () => panel === 'chat');
const meter = new LevelMeter(/** @type {HTMLMeterElement} */ ($('mic-level')));
// A speaking indicator on every tile whose audio carries speech (the dominant speaker's tile
// is outlined besides, from the server's dominantSpeakerChanged).
const talking = new SpeechIndicator((key) => stage.get(key));

/** @type {Credential} */
let credential = {};
let roomName = '';
/** @type {Room | null} */
let room = null;
/** @type {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null}} what the preview holds */
const preview = { audio: null, video: null };
/** @type {LocalTrack | null} */
let screenTrack = null;
/** @type {null | 'chat' | 'people' | 'settings'} */
let panel = null;
/** @type {RoomMonitor | null} */
let monitor = null;
/** @type {Room | null} the room `monitor` watches */
let monitored = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let noticeTimer = null;
/** @type {import('/static/join-media.js').Capture['problems']} why the preview lacks a kind */
const problems = {};
/** @type {Promise<void>} the preview's capture under way (Join waits for it) */
let previewReady = Promise.resolve();

// -- storage (a browser may refuse it: private windows, strict settings) ------------------

/**
 * @param {Storage} store
 * @param {string} key
 * @returns {string | null}
 */
function load(store, key) {
  try {
    return store.getItem(key);
  } catch {
    return null;
  }
}

/**
 * @param {Storage} store
 * @param {string} key
 * @param {string} value
 */
function save(store, key, value) {
  try {
    store.setItem(key, value);
  } catch {
    // Without storage the page still works; only coming back needs the link again.
  }
}

/** @returns {{camera: string, mic: string, speaker: string}} */
function deviceChoice() {
  try {
    return { camera: '', mic: '', speaker: '', ...JSON.parse(load(localStorage, DEVICES_KEY) || '{}') };
  } catch {
    return { camera: '', mic: '', speaker: '' };
  }
}

function saveDeviceChoice() {
  const choice = { camera: select('camera-select').value, mic: select('mic-select').value, speaker: select('speaker-select').value };
  save(localStorage, DEVICES_KEY, JSON.stringify(choice));
}

// -- the credential ------------------------------------------------------------------------

/**
 * The claims of a JWT, unverified (only to show the room it names), or null.
 * @param {string} jwt
 * @returns {any}
 */
function claimsOf(jwt) {
  const part = jwt.split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** @returns {string} the room the link's credential names, else the address's */
function credentialRoom() {
  const claims = claimsOf(credential.token || credential.invite || '');
  const fromToken = claims && claims.grants && claims.grants.video && claims.grants.video.room;
  const named = credential.token ? fromToken : claims && claims.room;
  if (typeof named === 'string' && named) return named;
  const last = window.location.pathname.split('/').filter(Boolean).pop() || '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The link's token or invite, kept for this tab; the address loses it. */
function readCredential() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');
  const invite = params.get('invite');
  if (token || invite) {
    credential = token ? { token } : { invite: /** @type {string} */ (invite) };
    save(sessionStorage, CREDENTIAL_KEY, JSON.stringify(credential));
    // Keep credentials out of the address bar, history and screenshots.
    window.history.replaceState(null, '', window.location.pathname);
    return;
  }
  try {
    credential = JSON.parse(load(sessionStorage, CREDENTIAL_KEY) || '{}');
  } catch {
    credential = {};
  }
}

/**
 * @param {string} invite
 * @param {string} identity
 * @returns {Promise<{token: string, room?: string, identity: string, guestKey?: string}>}
 */
async function redeem(invite, identity) {
  const body = new URLSearchParams({ Invite: invite, Identity: identity });
  const key = load(localStorage, GUEST_KEY);
  if (key) body.set('GuestKey', key);
  const response = await fetch('/v1/Invites/Redeem', { method: 'POST', body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${data.message || 'invite refused'} (${data.code || response.status})`);
  // The key lets this browser (and only it) have this name again: after Leave, a reload or
  // a closed tab.
  if (data.guestKey) save(localStorage, GUEST_KEY, data.guestKey);
  save(localStorage, NAME_KEY, identity);
  return data;
}

// -- status, banner, screens -----------------------------------------------------------------

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

/**
 * A short message in the banner (hidden again after a while, unless reconnecting).
 * @param {string} text
 */
function notice(text) {
  const banner = $('banner');
  banner.textContent = text;
  banner.hidden = false;
  banner.dataset.kind = 'notice';
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    if (banner.dataset.kind === 'notice') banner.hidden = true;
  }, 6000);
}

/** @param {'prejoin' | 'call' | 'left'} screen */
function show(screen) {
  $('prejoin').hidden = screen !== 'prejoin';
  $('call').hidden = screen !== 'call';
  $('controls').hidden = screen !== 'call';
  $('count').hidden = screen !== 'call';
  $('left').hidden = screen !== 'left';
  if (screen !== 'call') {
    $('monitor').hidden = true;
    $('recording').hidden = true;
    openPanel(null);
  }
  // The device choice lives in the pre-join, and in the call's side panel.
  const devices = $('devices');
  if (screen === 'call') $('settings').append(devices);
  else /** @type {HTMLElement} */ ($('prejoin').querySelector('.setup')).prepend(devices);
  document.body.dataset.screen = screen;
}

/** @param {null | 'chat' | 'people' | 'settings'} which */
function openPanel(which) {
  panel = which;
  $('panel').hidden = which === null;
  const titles = { chat: 'Chat', people: 'People', settings: 'Devices' };
  $('panel-title').textContent = which ? titles[which] : '';
  for (const name of /** @type {const} */ (['chat', 'people', 'settings'])) {
    $(name).hidden = which !== name;
    $(`${name}-toggle`).setAttribute('aria-expanded', String(which === name));
  }
  $('count').setAttribute('aria-expanded', String(which === 'people'));
  if (which === 'chat') {
    chat.seen();
    input('chat-input').focus();
  }
  stage.layout();
}

// -- before joining ---------------------------------------------------------------------------

/** @param {'audio' | 'video'} kind */
function releasePreview(kind) {
  const track = preview[kind];
  if (track) track.stop();
  preview[kind] = null;
  if (kind === 'audio') meter.stop();
  if (kind === 'video') /** @type {HTMLVideoElement} */ ($('preview')).srcObject = null;
  $('preview-off').hidden = preview.video !== null;
}

/**
 * Capture what the check boxes ask for (again, for the kinds given) and show it.
 * @param {('audio' | 'video')[]} kinds
 */
function refreshPreview(kinds = ['audio', 'video']) {
  const next = previewReady.then(() => capturePreview(kinds)).catch((err) => console.error('join: preview failed', err));
  previewReady = next;
  return next;
}

/** @param {('audio' | 'video')[]} kinds */
async function capturePreview(kinds) {
  for (const kind of kinds) releasePreview(kind);
  const want = {
    audio: kinds.includes('audio') && input('want-mic').checked,
    video: kinds.includes('video') && input('want-camera').checked,
  };
  const got = await capture(want, deviceChoice());
  if ($('prejoin').hidden) {
    for (const track of [got.audio, got.video]) if (track) track.stop(); // no longer wanted
    return;
  }
  preview.audio = got.audio || preview.audio;
  preview.video = got.video || preview.video;
  for (const kind of kinds) {
    delete problems[kind];
    const problem = got.problems[kind];
    if (problem) problems[kind] = problem;
  }
  if (got.video) {
    const video = /** @type {HTMLVideoElement} */ ($('preview'));
    video.srcObject = new MediaStream([got.video]);
    video.play().catch(() => {});
  }
  $('preview-off').hidden = preview.video !== null;
  if (got.audio) meter.start(got.audio);
  const words = advice(problems);
  $('advice').hidden = !words;
  $('advice-text').textContent = words;
  $('join-audio-only').hidden = !words || !preview.audio;
  $('join-watch-only').hidden = !words;
  if (problems.video) input('want-camera').checked = false;
  if (problems.audio) input('want-mic').checked = false;
  await refreshDeviceLists();
}

async function refreshDeviceLists() {
  const devices = await listDevices();
  const choice = deviceChoice();
  // The device actually in use, when the default was asked for.
  const inUse = (/** @type {MediaStreamTrack | null} */ track, /** @type {string} */ chosen) => chosen || (track && track.getSettings().deviceId) || '';
  fillSelect(select('camera-select'), devices.videoinput, inUse(currentTrack('video'), choice.camera), 'Camera');
  fillSelect(select('mic-select'), devices.audioinput, inUse(currentTrack('audio'), choice.mic), 'Microphone');
  fillSelect(select('speaker-select'), devices.audiooutput, choice.speaker, 'Speaker');
  $('speaker-label').hidden = !canChooseSpeaker;
  select('speaker-select').hidden = !canChooseSpeaker;
}

/**
 * The MediaStreamTrack of a kind this page sends (in the call) or previews (before).
 * @param {'audio' | 'video'} kind
 * @returns {MediaStreamTrack | null}
 */
function currentTrack(kind) {
  const local = localTrack(kind);
  return local ? local.mediaStreamTrack : preview[kind];
}

function showPrejoin() {
  show('prejoin');
  $('name-row').hidden = !credential.invite;
  input('identity').required = Boolean(credential.invite);
  if (credential.invite && !input('identity').value) input('identity').value = load(localStorage, NAME_KEY) || '';
  setStatus('waiting', credential.invite ? 'enter your name' : 'ready to join');
  return refreshPreview();
}

/**
 * Join with what the preview holds (or less): `audio` / `video` false leave that kind out.
 * @param {{audio: boolean, video: boolean}} use
 */
async function join(use) {
  $('invite-error').textContent = '';
  /** @type {HTMLButtonElement} */ ($('join-button')).disabled = true;
  try {
    await previewReady;
    let token = credential.token || '';
    if (credential.invite) {
      const identity = input('identity').value.trim();
      const granted = await redeem(credential.invite, identity);
      token = granted.token;
      if (granted.room) roomName = granted.room;
      showRoomName();
    }
    if (!use.audio) releasePreview('audio');
    if (!use.video) releasePreview('video');
    meter.stop();
    const tracks = /** @type {(MediaStreamTrack | LocalDataTrack)[]} */ ([preview.audio, preview.video].filter(Boolean));
    preview.audio = null;
    preview.video = null;
    /** @type {HTMLVideoElement} */ ($('preview')).srcObject = null;
    tracks.push(chat.newTrack());
    setStatus('connecting');
    show('call');
    const networkQuality = /** @type {const} */ ({ local: 'minimal', remote: 'minimal' });
    await enterCall(await connect(token, { name: roomName, tracks, dominantSpeaker: true, networkQuality }));
  } catch (err) {
    const { message, code } = /** @type {EdgeVideoError} */ (err);
    if (credential.invite && !room && $('call').hidden) {
      $('invite-error').textContent = message; // the invite was refused: try another name
      setStatus('waiting', 'enter your name');
    } else {
      stage.clear();
      show('left');
      $('left-text').textContent = `Could not join: ${message}${code ? ` (${code})` : ''}`;
      setStatus('disconnected', `${message}${code ? ` (${code})` : ''}`);
    }
  } finally {
    /** @type {HTMLButtonElement} */ ($('join-button')).disabled = false;
  }
}

function showRoomName() {
  $('room-name').textContent = roomName;
  document.title = `${roomName} \u2013 video room`;
}

// -- in the call -------------------------------------------------------------------------------

/**
 * @param {string} name
 * @returns {boolean}
 */
const isScreen = (name) => name === SCREEN || name.startsWith(`${SCREEN}-`);

/**
 * The local track of a kind this page publishes (not the shared screen).
 * @param {'audio' | 'video'} kind
 * @returns {LocalTrack | null}
 */
function localTrack(kind) {
  if (!room || !room.localParticipant) return null;
  for (const track of room.localParticipant.tracks.values()) {
    if (track instanceof LocalTrack && track.kind === kind && !isScreen(track.name)) return track;
  }
  return null;
}

/**
 * @param {HTMLElement | undefined} tile
 * @param {string} kind
 * @param {boolean} enabled
 */
function setBadge(tile, kind, enabled) {
  if (!tile || kind === 'data') return; // data tracks have no picture or sound to badge
  /** @type {HTMLElement} */ (tile.querySelector(kind === 'audio' ? '.mic-off' : '.cam-off')).hidden = enabled;
  if (kind === 'video') tile.classList.toggle('camera-off', !enabled);
}

/** @param {Participant} participant */
function screenKey(participant, /** @type {string} */ trackSid) {
  return `${participant.sid}:${trackSid}`;
}

/**
 * @param {Participant} participant
 * @param {RemoteTrack | RemoteDataTrack} track
 */
function showTrack(participant, track) {
  if (track.kind === 'data') {
    chat.listen(/** @type {RemoteDataTrack} */ (track), participant.identity);
    return;
  }
  const screen = track.kind === 'video' && isScreen(track.name);
  const tile = screen
    ? stage.add(screenKey(participant, track.sid), { name: `${participant.identity} (screen)`, screen: true, participantSid: participant.sid })
    : stage.get(participant.sid);
  if (!tile) return;
  const el = track.attach();
  el.dataset.trackSid = track.sid;
  /** @type {Element} */ (tile.querySelector('.media')).append(el);
  if (track.kind === 'audio') {
    routeAudio([el], select('speaker-select').value);
    if (!screen) talking.watch(participant.sid, track.mediaStreamTrack);
  }
  if (track.kind === 'video') {
    tile.classList.remove('no-video');
    const paused = /** @type {HTMLElement} */ (tile.querySelector('.paused'));
    // Adaptation may switch a track off to save bandwidth: the tile says so.
    track.on('switchedOff', () => { paused.hidden = false; tile.classList.add('switched-off'); });
    track.on('switchedOn', () => { paused.hidden = true; tile.classList.remove('switched-off'); });
  }
  if (!screen) setBadge(tile, track.kind, track.isEnabled);
}

/**
 * @param {Participant} participant
 * @param {RemoteTrack | RemoteDataTrack} track
 */
function hideTrack(participant, track) {
  if (track.kind === 'audio') talking.forget(participant.sid);
  for (const el of document.querySelectorAll('[data-track-sid]')) {
    if (el instanceof HTMLElement && el.dataset.trackSid === track.sid) el.remove();
  }
  if (track.kind === 'video') {
    if (isScreen(track.name)) stage.remove(screenKey(participant, track.sid));
    else stage.get(participant.sid)?.classList.add('no-video');
  }
}

/**
 * The network-quality bars of a participant's tile (0 to 5, as twilio-video's levels).
 * @param {Participant | LocalParticipant} participant
 */
function watchNetworkQuality(participant) {
  participant.on('networkQualityLevelChanged', /** @param {number | null} level */ (level) => {
    /** @type {HTMLElement | null | undefined} */
    const bars = stage.get(participant.sid)?.querySelector('.nq');
    if (!bars) return;
    bars.hidden = typeof level !== 'number';
    bars.dataset.level = String(level);
    bars.setAttribute('role', 'img');
    bars.setAttribute('aria-label', `network quality ${level} of 5`);
    // One's own link at 1 or 2: say so on one's own tile (the others see only bars).
    /** @type {HTMLElement | null | undefined} */
    const weak = room && participant === room.localParticipant ? stage.get(participant.sid)?.querySelector('.weak-link') : null;
    if (weak) weak.hidden = !(level === 1 || level === 2);
  });
}

/** @param {Participant} participant */
function addParticipant(participant) {
  if (stage.get(participant.sid)) return;
  stage.add(participant.sid, { name: participant.identity, participantSid: participant.sid });
  watchNetworkQuality(participant);
  for (const publication of participant.tracks.values()) {
    if (!isScreen(publication.trackName)) setBadge(stage.get(participant.sid), publication.kind, publication.isTrackEnabled);
    if (publication.track) showTrack(participant, publication.track);
  }
  updatePeople();
}

/** @param {Participant} participant */
function removeParticipant(participant) {
  for (const key of [...stage.tiles.keys()]) {
    if (key === participant.sid || key.startsWith(`${participant.sid}:`)) stage.remove(key);
  }
  updatePeople();
}

function updatePeople() {
  if (!room || !room.localParticipant) return;
  const everyone = [room.localParticipant, ...room.participants.values()];
  $('count').textContent = everyone.length === 1 ? '1 person' : `${everyone.length} people`;
  $('count').setAttribute('aria-label', `${everyone.length} in the room: show the list`);
  const items = everyone.map((p, index) => {
    const item = document.createElement('li');
    item.textContent = index === 0 ? `${p.identity} (you)` : p.identity;
    if (p.state === 'reconnecting') item.append(' \u2014 reconnecting');
    return item;
  });
  $('people-list').replaceChildren(...items);
}

/**
 * Show one of this page's own video tracks on its tile.
 * @param {LocalTrack} track
 */
function showLocalVideo(track) {
  const me = /** @type {LocalParticipant} */ (/** @type {Room} */ (room).localParticipant);
  const screen = isScreen(track.name);
  const tile = screen
    ? stage.add(`${me.sid}:${SCREEN}`, { name: `${me.identity} (screen)`, local: true, screen: true })
    : stage.get(me.sid);
  if (!tile) return;
  const media = /** @type {Element} */ (tile.querySelector('.media'));
  const existing = media.querySelector('video');
  const el = track.attach(existing || undefined);
  if (!existing) media.append(el);
  tile.classList.remove('no-video');
  if (!screen) setBadge(tile, 'video', track.isEnabled);
}

/** @param {Room} joined */
async function enterCall(joined) {
  room = joined;
  /** @type {any} */ (window).edgeRoom = room; // for diagnostics and tests
  const me = /** @type {LocalParticipant} */ (room.localParticipant); // set once connected
  if (room.name) roomName = room.name;
  showRoomName();
  talking.stop();
  stage.clear();
  $('chat-log').replaceChildren();
  stage.add(me.sid, { name: me.identity, local: true });
  watchNetworkQuality(me);
  for (const track of me.tracks.values()) {
    if (track instanceof LocalTrack && track.kind === 'video') showLocalVideo(track);
    if (track instanceof LocalTrack && track.kind === 'audio') talking.watch(me.sid, track.mediaStreamTrack);
  }
  syncButtons();
  wireRoom(room);
  for (const participant of room.participants.values()) addParticipant(participant);
  updatePeople();
  $('recording').hidden = !(/** @type {any} */ (room).isRecording);
  setStatus('connected');
}

/** The mute and camera buttons as the local tracks are. */
function syncButtons() {
  const me = room && room.localParticipant;
  for (const [id, kind, on, off] of /** @type {const} */ ([['mic', 'audio', 'Mute mic', 'Unmute mic'], ['camera', 'video', 'Stop camera', 'Start camera']])) {
    const track = localTrack(kind);
    const enabled = Boolean(track && track.isEnabled);
    $(id).setAttribute('aria-pressed', String(!enabled));
    $(id).textContent = enabled ? on : off;
    if (me) setBadge(stage.get(me.sid), kind, enabled);
  }
  const sharing = screenTrack !== null;
  $('share').setAttribute('aria-pressed', String(sharing));
  $('share').textContent = sharing ? 'Stop sharing' : 'Share screen';
}

/** @param {Room} r */
function wireRoom(r) {
  r.on('participantConnected', addParticipant);
  r.on('participantDisconnected', removeParticipant);
  r.on('trackSubscribed', /** @param {RemoteTrack | RemoteDataTrack} track @param {RemoteTrackPublication} _pub @param {Participant} participant */ (track, _pub, participant) => showTrack(participant, track));
  r.on('trackUnsubscribed', /** @param {RemoteTrack | RemoteDataTrack} track @param {RemoteTrackPublication} _pub @param {Participant} participant */ (track, _pub, participant) => hideTrack(participant, track));
  /** @typedef {(publication: RemoteTrackPublication, participant: Participant) => void} OnTrack */
  for (const [event, enabled] of /** @type {const} */ ([['trackEnabled', true], ['trackDisabled', false]])) {
    r.on(event, /** @type {OnTrack} */ ((publication, participant) => {
      if (!isScreen(publication.trackName)) setBadge(stage.get(participant.sid), publication.kind, enabled);
    }));
  }
  for (const event of ['participantReconnecting', 'participantReconnected']) {
    r.on(event, /** @param {Participant} participant */ (participant) => {
      /** @type {HTMLElement | null | undefined} */
      const badge = stage.get(participant.sid)?.querySelector('.state');
      if (badge) {
        badge.hidden = event === 'participantReconnected';
        badge.textContent = 'reconnecting';
      }
      updatePeople();
    });
  }
  // Fed by the server's room signals as twilio-video names them.
  r.on('dominantSpeakerChanged', /** @param {Participant | null} participant */ (participant) => stage.setDominant(participant ? participant.sid : null));
  r.on('recordingStarted', () => { $('recording').hidden = false; });
  r.on('recordingStopped', () => { $('recording').hidden = true; });
  r.on('reconnecting', () => {
    const banner = $('banner');
    banner.dataset.kind = 'reconnecting';
    banner.textContent = 'The connection to the room was lost. Reconnecting\u2026 Your camera and microphone stay on; the others see you again once the link is back.';
    banner.hidden = false;
    setStatus('reconnecting');
  });
  r.on('reconnected', () => {
    $('banner').hidden = true;
    setStatus('connected');
  });
  r.on('disconnected', /** @param {Room} _room @param {EdgeVideoError | null} error */ (_room, error) => {
    if (r !== room) return;
    leftCall(error);
  });
}

/** @param {EdgeVideoError | null} error */
function leftCall(error) {
  if (monitor) monitor.stop();
  if (screenTrack) screenTrack.stop();
  screenTrack = null;
  room = null;
  stage.clear();
  $('banner').hidden = true;
  show('left');
  const why = error ? `${error.message} (${error.code})` : 'left';
  $('left-text').textContent = error ? `You are no longer in the room: ${why}.` : 'You left the room.';
  setStatus('disconnected', why);
  $('rejoin').focus();
}

/**
 * Mute/unmute, stop/start the camera; start captures it first when it was never on.
 * @param {'audio' | 'video'} kind
 */
async function toggleKind(kind) {
  if (!room || !room.localParticipant) return;
  const track = localTrack(kind);
  if (track) {
    track.enable(!track.isEnabled);
  } else {
    const choice = deviceChoice();
    const got = await capture({ audio: kind === 'audio', video: kind === 'video' }, choice);
    const captured = got[kind];
    if (!captured) {
      notice(advice(got.problems));
      return;
    }
    const local = new LocalTrack(captured, kind === 'audio' ? 'microphone' : 'camera');
    // The track is this page's at once (the buttons and the tile say so); the server's
    // confirmation follows.
    const published = room.localParticipant.publishTrack(local);
    if (kind === 'video') showLocalVideo(local);
    syncButtons();
    try {
      await published;
    } catch (err) {
      local.stop();
      const me = room && room.localParticipant;
      if (me && kind === 'video') stage.get(me.sid)?.classList.add('no-video');
      notice(`Could not send it: ${/** @type {Error} */ (err).message}`);
    }
  }
  syncButtons();
}

async function toggleScreen() {
  if (!room || !room.localParticipant) return;
  const me = room.localParticipant;
  if (screenTrack) {
    me.unpublishTrack(screenTrack);
    screenTrack.stop();
    screenTrack = null;
    stage.remove(`${me.sid}:${SCREEN}`);
    syncButtons();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    if (/** @type {Error} */ (err).name !== 'AbortError') notice(`The screen cannot be shared: ${/** @type {Error} */ (err).message}`);
    return;
  }
  const captured = stream.getVideoTracks()[0];
  if (!captured) return;
  screenTrack = new LocalTrack(captured, SCREEN);
  // The browser's own "Stop sharing" ends the track.
  captured.addEventListener('ended', () => { if (screenTrack && screenTrack.mediaStreamTrack === captured) toggleScreen(); });
  showLocalVideo(screenTrack);
  syncButtons();
  await me.publishTrack(screenTrack);
}

/**
 * Another camera, microphone or speaker chosen in the call: switch without leaving.
 * @param {'audio' | 'video' | 'speaker'} what
 */
async function switchDevice(what) {
  saveDeviceChoice();
  const choice = deviceChoice();
  if (what === 'speaker') {
    await routeAudio(document.querySelectorAll('audio'), choice.speaker);
    return;
  }
  if (!room) {
    await refreshPreview([what]);
    return;
  }
  const track = localTrack(what);
  if (!track) return;
  try {
    await track.restart(constraintsFor(what, what === 'audio' ? choice.mic : choice.camera));
    if (what === 'video') showLocalVideo(track);
  } catch (err) {
    notice(advice({ [what]: problemOf(err) }));
  }
}

function wireControls() {
  $('mic').addEventListener('click', () => toggleKind('audio'));
  $('camera').addEventListener('click', () => toggleKind('video'));
  $('share').addEventListener('click', () => toggleScreen());
  if (!navigator.mediaDevices || !('getDisplayMedia' in navigator.mediaDevices)) $('share').hidden = true;
  $('view').addEventListener('click', () => {
    const speaker = stage.view === 'grid';
    stage.setView(speaker ? 'speaker' : 'grid');
    $('view').setAttribute('aria-pressed', String(speaker));
  });
  for (const name of /** @type {const} */ (['chat', 'people', 'settings'])) {
    $(`${name}-toggle`).addEventListener('click', () => openPanel(panel === name ? null : name));
  }
  $('count').addEventListener('click', () => openPanel(panel === 'people' ? null : 'people'));
  $('panel-close').addEventListener('click', () => openPanel(null));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && panel) openPanel(null);
  });
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const me = room && room.localParticipant;
    try {
      if (me && chat.send(input('chat-input').value, me.identity)) input('chat-input').value = '';
    } catch (err) {
      notice(/** @type {Error} */ (err).message);
    }
  });
  $('monitor-toggle').addEventListener('click', () => {
    if (!room) return;
    if (!monitor || monitored !== room) {
      if (monitor) monitor.stop();
      monitor = new RoomMonitor(room, $('monitor'));
      monitored = room;
    }
    const showIt = !monitor.running;
    if (showIt) monitor.start();
    else monitor.stop();
    $('monitor').hidden = !showIt;
    $('monitor-toggle').setAttribute('aria-pressed', String(showIt));
    stage.layout();
  });
  $('leave').addEventListener('click', () => room && room.disconnect());
  window.addEventListener('pagehide', () => room && room.disconnect());
  // Rejoin: the same choices as last time, straight in (the set-up stays up if it cannot be).
  $('rejoin').addEventListener('click', async () => {
    await showPrejoin();
    if (!credential.invite || input('identity').value.trim()) await join({ audio: input('want-mic').checked, video: input('want-camera').checked });
  });
  $('invite-form').addEventListener('submit', (event) => {
    event.preventDefault();
    join({ audio: input('want-mic').checked, video: input('want-camera').checked });
  });
  $('join-audio-only').addEventListener('click', () => join({ audio: true, video: false }));
  $('join-watch-only').addEventListener('click', () => join({ audio: false, video: false }));
  $('retry-devices').addEventListener('click', () => {
    input('want-camera').checked = true;
    input('want-mic').checked = true;
    refreshPreview();
  });
  input('want-camera').addEventListener('change', () => refreshPreview(['video']));
  input('want-mic').addEventListener('change', () => refreshPreview(['audio']));
  select('camera-select').addEventListener('change', () => switchDevice('video'));
  select('mic-select').addEventListener('change', () => switchDevice('audio'));
  select('speaker-select').addEventListener('change', () => switchDevice('speaker'));
}

function main() {
  readCredential();
  roomName = credentialRoom();
  showRoomName();
  wireControls();
  if (!credential.token && !credential.invite) {
    show('left');
    $('rejoin').hidden = true;
    $('left-text').textContent = 'This link has no token or invite. Ask for the room\u2019s link again.';
    setStatus('disconnected', 'this link has no token or invite');
    return;
  }
  showPrejoin();
}

main();
