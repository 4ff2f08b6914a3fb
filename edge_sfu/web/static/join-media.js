// @ts-check
// The join page's devices: capture the chosen camera and microphone (each on its own, so a
// refused camera still leaves the microphone), say in words what went wrong, a microphone
// level meter, and the speaker choice where the browser can route audio (setSinkId).

/** Whether this browser can play to a chosen speaker (Chromium, Firefox; not Safari). */
export const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/** @typedef {'denied' | 'missing' | 'busy' | 'unavailable'} Problem */
/**
 * @typedef {object} Capture
 * @property {MediaStreamTrack | null} audio
 * @property {MediaStreamTrack | null} video
 * @property {{audio?: Problem, video?: Problem}} problems why a wanted kind is missing
 */

/**
 * @param {unknown} err a getUserMedia rejection
 * @returns {Problem}
 */
export function problemOf(err) {
  const name = err instanceof Error || err instanceof DOMException ? err.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') return 'denied';
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') return 'missing';
  if (name === 'NotReadableError' || name === 'AbortError' || name === 'TrackStartError') return 'busy';
  return 'unavailable';
}

/**
 * @param {'audio' | 'video'} _kind
 * @param {string} deviceId '' for the browser's default
 * @returns {boolean | MediaTrackConstraints}
 */
export function constraintsFor(_kind, deviceId) {
  return deviceId ? { deviceId: { exact: deviceId } } : true;
}

/**
 * Capture what is wanted: both with one prompt if possible, else each kind on its own.
 * @param {{audio: boolean, video: boolean}} want
 * @param {{camera: string, mic: string}} choice device ids ('' for the default)
 * @returns {Promise<Capture>}
 */
export async function capture(want, choice) {
  /** @type {Capture} */
  const result = { audio: null, video: null, problems: {} };
  if (!want.audio && !want.video) return result;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    if (want.audio) result.problems.audio = 'unavailable';
    if (want.video) result.problems.video = 'unavailable';
    return result;
  }
  /** @param {MediaStreamConstraints} constraints */
  const take = async (constraints) => {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    for (const track of stream.getTracks()) result[/** @type {'audio' | 'video'} */ (track.kind)] = track;
  };
  try {
    await take({
      audio: want.audio && constraintsFor('audio', choice.mic),
      video: want.video && constraintsFor('video', choice.camera),
    });
    return result;
  } catch {
    // One of them failed (or the prompt was refused as a whole): try each on its own.
  }
  for (const kind of /** @type {('audio' | 'video')[]} */ (['audio', 'video'])) {
    if (!want[kind] || result[kind]) continue;
    try {
      await take({ [kind]: constraintsFor(kind, kind === 'audio' ? choice.mic : choice.camera) });
    } catch (err) {
      result.problems[kind] = problemOf(err);
    }
  }
  return result;
}

const WORDS = {
  denied: 'was not allowed (the browser or its site settings blocked it)',
  missing: 'was not found',
  busy: 'is in use by another application',
  unavailable: 'cannot be used on this page',
};

/**
 * What to tell the person about a capture's problems, or '' when there are none.
 * @param {Capture['problems']} problems
 * @returns {string}
 */
export function advice(problems) {
  const parts = [];
  if (problems.video) parts.push(`The camera ${WORDS[problems.video]}.`);
  if (problems.audio) parts.push(`The microphone ${WORDS[problems.audio]}.`);
  if (parts.length === 0) return '';
  if (problems.audio === 'denied' || problems.video === 'denied') {
    parts.push('To use them, allow them in the address bar\u2019s site settings, then try again.');
  }
  parts.push(problems.audio ? 'You can still join to watch and listen.' : 'You can still join with your microphone only.');
  return parts.join(' ');
}

/**
 * @returns {Promise<{videoinput: MediaDeviceInfo[], audioinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[]}>}
 */
export async function listDevices() {
  /** @type {{videoinput: MediaDeviceInfo[], audioinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[]}} */
  const out = { videoinput: [], audioinput: [], audiooutput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  for (const device of await navigator.mediaDevices.enumerateDevices()) {
    // Before permission, browsers list devices without ids: nothing to choose between yet.
    if (device.deviceId && device.kind in out) out[device.kind].push(device);
  }
  return out;
}

/**
 * Fill a device <select>; the first entry is the browser's default.
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string} current the chosen device id ('' for the default)
 * @param {string} noun e.g. 'Camera'
 */
export function fillSelect(select, devices, current, noun) {
  const options = [new Option(`Default ${noun.toLowerCase()}`, '')];
  devices.forEach((device, index) => {
    if (device.deviceId === 'default') return; // the entry above
    options.push(new Option(device.label || `${noun} ${index + 1}`, device.deviceId));
  });
  select.replaceChildren(...options);
  select.value = current !== 'default' && devices.some((d) => d.deviceId === current) ? current : '';
}

/**
 * Play every element through a chosen speaker, where the browser can.
 * @param {Iterable<HTMLMediaElement>} elements
 * @param {string} deviceId '' for the default
 */
export async function routeAudio(elements, deviceId) {
  if (!canChooseSpeaker) return;
  for (const el of elements) {
    const sinkable = /** @type {HTMLMediaElement & {setSinkId: (id: string) => Promise<void>}} */ (el);
    await sinkable.setSinkId(deviceId).catch((err) => console.warn('join: speaker not applied', err));
  }
}

/** A microphone's loudness on a <meter> (0..1), ten times a second. */
export class LevelMeter {
  /** @param {HTMLMeterElement} meter */
  constructor(meter) {
    this.meter = meter;
    /** @type {AudioContext | null} */
    this._context = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._timer = null;
  }

  /** @param {MediaStreamTrack | null} track */
  start(track) {
    this.stop();
    const Context = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!track || !Context) return;
    const context = /** @type {AudioContext} */ (new Context());
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this._context = context;
    this._timer = setInterval(() => {
      if (context.state === 'suspended') context.resume().catch(() => {});
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      // Speech sits around 0.05 RMS: scaled so it fills about half the meter.
      this.meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 8);
    }, 100);
  }

  stop() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    if (this._context) this._context.close().catch(() => {});
    this._context = null;
    this.meter.value = 0;
  }
}

/**
 * Speaking indicators: the tiles whose audio carries sound now get the class `talking`
 * (measured in the page with Web Audio, five times a second; a pause shorter than
 * HANGOVER_MS keeps it, so it does not flicker between words). Each look covers about the
 * whole time since the last one (WINDOW samples) and asks whether any short block of it was
 * loud: one short window every 200 ms fell into the pauses between syllables often enough
 * to make a steady speaker's indicator blink.
 */
export class SpeechIndicator {
  /** @param {(key: string) => HTMLElement | undefined} tileOf */
  constructor(tileOf) {
    this.tileOf = tileOf;
    /** @type {AudioContext | null} */
    this._context = null;
    /** @type {Map<string, {analyser: AnalyserNode, source: MediaStreamAudioSourceNode, heard: number}>} */
    this._tracks = new Map();
    /** @type {ReturnType<typeof setInterval> | null} */
    this._timer = null;
  }

  /**
   * Watch the audio track of the tile `key` (replacing one watched before).
   * @param {string} key
   * @param {MediaStreamTrack} track
   */
  watch(key, track) {
    this.forget(key);
    const Context = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Context) return;
    if (!this._context) this._context = /** @type {AudioContext} */ (new Context());
    const analyser = this._context.createAnalyser();
    analyser.fftSize = WINDOW;
    const source = this._context.createMediaStreamSource(new MediaStream([track]));
    source.connect(analyser);
    this._tracks.set(key, { analyser, source, heard: 0 });
    if (!this._timer) this._timer = setInterval(() => this._tick(), 200);
  }

  /** @param {string} key */
  forget(key) {
    const watched = this._tracks.get(key);
    if (!watched) return;
    watched.source.disconnect();
    this._tracks.delete(key);
    this.tileOf(key)?.classList.remove('talking');
  }

  stop() {
    for (const key of [...this._tracks.keys()]) this.forget(key);
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    if (this._context) this._context.close().catch(() => {});
    this._context = null;
  }

  _tick() {
    const context = this._context;
    if (!context) return;
    if (context.state === 'suspended') context.resume().catch(() => {});
    const now = Date.now();
    const samples = new Float32Array(WINDOW);
    for (const [key, watched] of this._tracks) {
      watched.analyser.getFloatTimeDomainData(samples);
      if (loudestBlock(samples) > SPEECH_RMS) watched.heard = now;
      this.tileOf(key)?.classList.toggle('talking', now - watched.heard < HANGOVER_MS);
    }
  }
}

/** RMS (full scale 1) above which a tile's audio counts as speech: about -34 dBFS. */
const SPEECH_RMS = 0.02;
const HANGOVER_MS = 400;
/** Samples looked at per tick: 8192 are about 170 ms at 48 kHz (186 ms at 44.1 kHz). */
const WINDOW = 8192;
/** Samples per block whose RMS is compared (about 10 ms, a fraction of a syllable). */
const BLOCK = 512;

/**
 * The RMS of the loudest BLOCK-sample block of `samples`.
 * @param {Float32Array} samples
 */
function loudestBlock(samples) {
  let loudest = 0;
  for (let start = 0; start + BLOCK <= samples.length; start += BLOCK) {
    let sum = 0;
    for (let i = start; i < start + BLOCK; i++) sum += samples[i] * samples[i];
    loudest = Math.max(loudest, Math.sqrt(sum / BLOCK));
  }
  return loudest;
}
