// @ts-check
// edge-video-simulcast.js: how edge-video.js publishes camera video: which codec, whether
// as simulcast layers (and which), the encoder settings of each layer, and pausing the
// layers nobody in the room receives (the server's `send-layers`).
//
// Simulcast here is RID-based (RFC 8853): the server's offer lists one rid per layer the
// client announced in `publish`, the browser makes one encoding per rid, and this module
// gives each encoding its size and bitrate. Imported by edge-video.js.

import { PROTOCOL } from './edge-video-tracks.js';

/**
 * @typedef {import('./edge-video-tracks.js').LayerRequest} LayerRequest
 * @typedef {'VP8' | 'H264'} VideoCodecName
 * @typedef {{codec: VideoCodecName, simulcast?: boolean}} VideoCodecSettings
 * @typedef {'auto' | (VideoCodecName | VideoCodecSettings)[]} PreferredVideoCodecs
 * @typedef {{codec: VideoCodecName, simulcast: boolean}} VideoPlan
 * @typedef {'clear' | 'limited' | 'careful'} UplinkMode what the uplink allows (`UplinkGuard`)
 */

/** Layer rids from the top down: the full picture is always `f`. */
const RIDS_FROM_TOP = ['f', 'h', 'q'];
/** A layer smaller than this (pixels high) is not worth its encoder. */
const MIN_LAYER_HEIGHT = 90;
const MIN_LAYER_BITRATE = 80_000;
const MAX_LAYER_BITRATE = 2_500_000;

/**
 * What `preferredVideoCodecs` asks for, as twilio-video.js reads it: `'auto'` (the default)
 * is VP8 with simulcast; a list names codecs in order of preference, and its first entry
 * decides: a bare name (`'H264'`) means one layer, `{codec, simulcast: true}` layers.
 * @param {PreferredVideoCodecs | undefined} preferred
 * @returns {VideoPlan}
 */
export function videoPlan(preferred) {
  if (preferred === undefined || preferred === 'auto') return { codec: 'VP8', simulcast: true };
  const first = Array.isArray(preferred) ? preferred[0] : undefined;
  if (typeof first === 'string') return { codec: first, simulcast: false };
  if (first && typeof first === 'object') return { codec: first.codec, simulcast: first.simulcast === true };
  return { codec: 'VP8', simulcast: true };
}

/**
 * How many layers a picture of `width` x `height` is split into: what Chromium's encoder
 * sends at that size (its simulcast table: 3 from 960x540, 2 from 480x270, else 1); an
 * encoding beyond that would be announced and never arrive.
 * @param {number} width
 * @param {number} height
 */
function layerCount(width, height) {
  const pixels = width * height;
  if (pixels >= 960 * 540) return 3;
  if (pixels >= 480 * 270) return 2;
  return 1;
}

/**
 * The simulcast layers for a camera track of `width` x `height`, lowest first: the full
 * picture, then half and a quarter of it, as many as `layerCount` allows. Fewer than two
 * layers would not help anyone: then none (the track is sent as one stream).
 * @param {number} width
 * @param {number} height
 * @returns {LayerRequest[]}
 */
export function simulcastLayers(width, height) {
  /** @type {LayerRequest[]} */
  const layers = [];
  const count = Math.min(PROTOCOL.MAX_LAYERS, layerCount(width, height));
  for (let i = 0; i < count; i++) {
    const scale = 2 ** i;
    const w = Math.round(width / scale / 2) * 2;
    const h = Math.round(height / scale / 2) * 2;
    if (h < MIN_LAYER_HEIGHT || w < 2) break;
    // About 3 bits per pixel per second for the full picture (1 Mbit/s at 640x480) and one
    // for the smaller layers, within sane bounds: a smaller layer is what a subscriber on a
    // poor link gets, so it must stay cheap (two 320x240 cameras at 80 kbit/s and their audio
    // come to about 290 kbit/s with every packet's headers, which leaves a 400 kbit/s link
    // the headroom an estimate needs), and a small tile shows its blur less.
    const bitsPerPixel = i === 0 ? 3 : 1;
    const bitrate = Math.min(MAX_LAYER_BITRATE, Math.max(MIN_LAYER_BITRATE, Math.round(w * h * bitsPerPixel)));
    layers.unshift({ rid: RIDS_FROM_TOP[i], width: w, height: h, max_bitrate: bitrate });
  }
  return layers.length >= 2 ? layers : [];
}

/**
 * Whether a track is camera video, not a shared screen or window (a captured display has
 * `displaySurface` in its settings; an application may also mark text or detail).
 * @param {MediaStreamTrack} track
 */
export function isCameraVideo(track) {
  if (track.kind !== 'video') return false;
  const settings = /** @type {MediaTrackSettings & {displaySurface?: string}} */ (track.getSettings());
  return settings.displaySurface === undefined && track.contentHint !== 'detail' && track.contentHint !== 'text';
}

/**
 * The layers to announce for a local video track, or none (`simulcast` off, not camera
 * video, or a picture too small to split).
 * @param {MediaStreamTrack} track
 * @param {VideoPlan} plan
 * @returns {LayerRequest[]}
 */
export function layersFor(track, plan) {
  if (!plan.simulcast || !isCameraVideo(track)) return [];
  const settings = track.getSettings();
  return simulcastLayers(settings.width || 640, settings.height || 480);
}

/**
 * Below this estimate of its own uplink (bit/s), a browser sends only its lowest simulcast
 * layer. Chromium's allocator turns a second encoding on at its minimum once its estimate
 * passes about 420 kbit/s, and leaves the lowest one 40-60 kbit/s: measured behind a
 * 400 kbit/s link, whose estimate wanders between 280 and 580 kbit/s, both layers then
 * dropped to 6-9 frames a second, and so did everyone's view of that camera.
 */
export const UPLINK_LOW_BPS = 600_000;
/** From the first sample, how long the estimate is left to its start-up probing (ms). */
const GRACE_MS = 6_000;
/** Samples in a row under `UPLINK_LOW_BPS` before the upper layers pause. */
const LOW_SAMPLES = 2;
/**
 * How long the upper layers stay paused before they are tried again (ms), doubled after each
 * trial that failed, up to the longest. A sender that is limited by its encodings cannot
 * learn that its link grew (its estimate stays near what it sends), so only a trial tells.
 */
const HOLD_MS = 10_000;
const MAX_HOLD_MS = 80_000;
/** How long a trial runs before its estimate is judged (ms); it fails under the bar. */
const TRIAL_MS = 8_000;
/**
 * A trial's first seconds (ms), in which the upper layers may send at most `CAREFUL_BPS`
 * each. Chromium probes when an encoding comes back, and through a short link's queue (or a
 * shaper's bucket) that probe can read twice the link: its allocator then sent the top layer
 * at 600-700 kbit/s into 400, and the flood cost the page its own feedback and a few seconds
 * of the pictures it receives. A link that takes the careful trial takes the whole one next.
 */
const CAREFUL_MS = 2_000;
const CAREFUL_BPS = 250_000;
/**
 * The lowest layer's budget while it runs alone, in bits per pixel: twice its usual share
 * (150 kbit/s at 320x240) keeps its frame rate, and leaves a short link room for the
 * participant's audio and its feedback on what it receives (at 3 bits per pixel, behind
 * 400 kbit/s, that feedback queued behind the video for up to 0.8 s).
 */
const ALONE_BITS_PER_PIXEL = 2;
const MAX_ALONE_BITRATE = 300_000;

/**
 * Whether a browser's uplink is too weak for more than its lowest simulcast layer, from the
 * sender's own estimate (`availableOutgoingBitrate`) sampled every few seconds.
 *
 * Under `UPLINK_LOW_BPS` for `LOW_SAMPLES` samples, `limited` turns true: only the lowest
 * layer runs, with a budget that keeps its frame rate (`aloneBitrate`). After a hold the
 * upper layers are tried again: a trial whose estimate is at the bar after `TRIAL_MS`
 * succeeds (the hold starts again from `HOLD_MS`); one under it pauses them again for twice
 * the hold. A page whose estimate is still ramping up at the start of a call is not limited
 * by this: its estimate rises past the bar within the trial, and a rising estimate never
 * counts as low.
 */
export class UplinkGuard {
  constructor() {
    this.limited = false;
    /** whether a trial is in its careful first seconds (`CAREFUL_MS`) */
    this.careful = false;
    /** @type {number | null} when the upper layers may run again (epoch ms), while paused */
    this.resumeAt = null;
    /** @type {number | null} when the running trial is judged (epoch ms) */
    this.trialUntil = null;
    this.hold = HOLD_MS;
    this._low = 0;
    /** @type {number | null} the first sample (epoch ms) */
    this._since = null;
    /** the estimate a trial started from */
    this._trialFrom = 0;
    /** when the trial started (epoch ms) */
    this._trialAt = 0;
  }

  /** @returns {UplinkMode} */
  get mode() {
    if (this.limited) return 'limited';
    return this.careful ? 'careful' : 'clear';
  }

  /**
   * One sample of the sender's estimate (bit/s) at `now` (ms). Returns whether `mode`
   * changed.
   * @param {number} available
   * @param {number} now
   */
  sample(available, now) {
    if (this._since === null) this._since = now;
    // a call's first seconds are its sender's start-up probing: no verdict yet
    const settled = now - this._since >= GRACE_MS;
    const low = settled && available < UPLINK_LOW_BPS;
    this._low = low ? this._low + 1 : 0;
    if (this.limited) {
      if (this.resumeAt !== null && now >= this.resumeAt) {
        this.limited = false;
        this.resumeAt = null;
        this.trialUntil = now + TRIAL_MS;
        this._trialFrom = available;
        this._trialAt = now;
        this.careful = true;
        this._low = 0;
        return true;
      }
      return false;
    }
    if (this.trialUntil !== null) {
      // A trial on a link that cannot take it floods it at once, and the estimate falls
      // within a sample: it ends there, not after the whole trial.
      const falling = low && available < this._trialFrom;
      if (now < this.trialUntil && !falling) {
        if (!this.careful || now < this._trialAt + CAREFUL_MS) return false;
        this.careful = false;
        return true;
      }
      this.trialUntil = null;
      this.careful = false;
      if (low) {
        this.hold = Math.min(MAX_HOLD_MS, this.hold * 2);
        return this._pause(now);
      }
      this.hold = HOLD_MS;
      return false;
    }
    if (this._low >= LOW_SAMPLES) return this._pause(now);
    return false;
  }

  /** @param {number} now */
  _pause(now) {
    this.limited = true;
    this.resumeAt = now + this.hold;
    this._low = 0;
    return true;
  }
}

/**
 * Whether the lowest layer runs alone: under a `limited` uplink, or because the server wants
 * no other (every subscriber takes the smallest picture). Either way it is the whole picture
 * someone watches, not a thumbnail beside a larger one: it gets the alone budget, and keeps
 * its frame rate (`underLimit`).
 * @param {LayerRequest[]} layers as announced, lowest first
 * @param {Set<string> | null} wanted
 * @param {UplinkMode} uplink
 */
function lowestAlone(layers, wanted, uplink) {
  if (layers.length < 2) return false;
  if (uplink === 'limited') return true;
  const lowest = layers[0].rid;
  return !!wanted && wanted.size > 0 && layers.every((l) => l.rid === lowest || !wanted.has(l.rid));
}

/**
 * The lowest layer's budget while it runs alone (`ALONE_BITS_PER_PIXEL`), never less than it
 * was given.
 * @param {LayerRequest} lowest
 */
export function aloneBitrate(lowest) {
  const budget = Math.min(MAX_ALONE_BITRATE, Math.round(lowest.width * lowest.height * ALONE_BITS_PER_PIXEL));
  return Math.max(lowest.max_bitrate || MIN_LAYER_BITRATE, budget);
}

/**
 * Whether an encoding should run when the server says `wanted` rids are received: the wanted
 * ones, and the lowest layer too while anything is wanted (a subscriber that must step down
 * finds it running); nothing when nothing is wanted. Under a `limited` uplink, only the
 * lowest.
 * @param {string | undefined} rid
 * @param {Set<string>} wanted
 * @param {string | undefined} lowest
 * @param {boolean} [limited]
 */
function isActive(rid, wanted, lowest, limited = false) {
  if (wanted.size === 0) return false;
  if (limited) return rid !== undefined && rid === lowest;
  return rid !== undefined && (wanted.has(rid) || rid === lowest);
}

/**
 * Set up a video sender after the answer: each simulcast encoding's size (relative to the
 * track), bitrate and whether it runs (`wanted`, null before the server said), and the
 * degradation preference.
 * @param {RTCRtpSender} sender
 * @param {LayerRequest[]} layers as announced, lowest first (empty: one stream)
 * @param {Set<string> | null} wanted
 * @param {RTCDegradationPreference} degradation
 * @param {UplinkMode} [uplink] what the uplink allows (`UplinkGuard`)
 * @param {(rids: string[]) => void} [report] told the rids that run, before they are applied
 */
export async function configureSender(sender, layers, wanted, degradation, uplink = 'clear', report) {
  try {
    const params = /** @type {RTCRtpSendParameters & {degradationPreference?: RTCDegradationPreference}} */ (sender.getParameters());
    params.degradationPreference = underLimit(degradation, layers, wanted, uplink);
    const encodings = params.encodings || [];
    if (!layers.length && encodings.length > 1) {
      // One stream on an m-line that carried simulcast before: the first encoding sends
      // the whole picture (the server pauses the others in its offers).
      encodings.forEach((encoding, i) => {
        encoding.active = i === 0;
        encoding.scaleResolutionDownBy = 1;
        delete encoding.maxBitrate;
      });
    }
    const top = layers[layers.length - 1];
    if (top) {
      for (const encoding of encodings) {
        const layer = layers.find((l) => l.rid === encoding.rid);
        if (layer) encoding.scaleResolutionDownBy = Math.max(1, top.width / layer.width);
      }
      setRunning(encodings, layers, wanted, uplink);
      if (report) report(runningRids(encodings, layers));
    }
    await sender.setParameters(params);
  } catch (err) {
    console.debug('edge-video: encoder settings not applied', err);
  }
}

/**
 * Each encoding's `active` and `maxBitrate`: the announced bitrates and the server's
 * `wanted` rids (all run while it is null), or under a `limited` uplink the lowest layer
 * alone; the lowest layer running alone (`lowestAlone`) has the budget that keeps its frame
 * rate; in a `careful` trial the upper layers at most `CAREFUL_BPS` each. Returns whether
 * anything changed.
 * @param {RTCRtpEncodingParameters[]} encodings
 * @param {LayerRequest[]} layers as announced, lowest first
 * @param {Set<string> | null} wanted
 * @param {UplinkMode} uplink
 */
function setRunning(encodings, layers, wanted, uplink) {
  const lowest = layers.length ? layers[0] : undefined;
  const limited = uplink === 'limited';
  let changed = false;
  for (const encoding of encodings) {
    const layer = layers.find((l) => l.rid === encoding.rid);
    if (!layer) continue;
    const alone = layer === lowest && lowestAlone(layers, wanted, uplink);
    let bitrate = alone ? aloneBitrate(layer) : layer.max_bitrate;
    if (uplink === 'careful' && layer !== lowest && bitrate) bitrate = Math.min(bitrate, CAREFUL_BPS);
    if (bitrate && encoding.maxBitrate !== bitrate) {
      encoding.maxBitrate = bitrate;
      changed = true;
    }
    if (!wanted && !limited) continue; // before the server said, the offer's state holds
    const active = wanted ? isActive(encoding.rid, wanted, lowest && lowest.rid, limited) : alone;
    if (encoding.active !== active) {
      encoding.active = active;
      changed = true;
    }
  }
  return changed;
}

/**
 * The rids of the announced layers whose encodings run, lowest first.
 * @param {RTCRtpEncodingParameters[]} encodings
 * @param {LayerRequest[]} layers
 * @returns {string[]}
 */
export function runningRids(encodings, layers) {
  return layers
    .filter((layer) => encodings.some((e) => e.rid === layer.rid && e.active !== false))
    .map((layer) => layer.rid);
}

/**
 * The degradation preference of a sender: the one asked for, except that the lowest
 * simulcast layer running alone (`lowestAlone`) keeps its frame rate. Its size is already
 * the smallest; with `balanced`, Chromium lowers a 320x240 picture's frame rate first, to 7
 * frames a second once its estimate dips, and in our runs kept it there for 20 s after the
 * estimate and the encoder's target had recovered. The same happened to a layer that ran
 * alone because its only viewer was behind a short link: 7 frames a second at its thumbnail
 * budget for as long as the call lasted.
 * @param {RTCDegradationPreference} degradation
 * @param {LayerRequest[]} layers
 * @param {Set<string> | null} wanted
 * @param {UplinkMode} uplink
 * @returns {RTCDegradationPreference}
 */
function underLimit(degradation, layers, wanted, uplink) {
  return lowestAlone(layers, wanted, uplink) ? 'maintain-framerate' : degradation;
}

/**
 * Pause the encodings nobody receives and resume the others (`send-layers`), or under a
 * `limited` uplink run the lowest alone. A resumed encoding starts with a keyframe.
 * @param {RTCRtpSender} sender
 * @param {LayerRequest[]} layers as announced, lowest first
 * @param {Set<string> | null} wanted null: the server has not said
 * @param {UplinkMode} uplink
 * @param {RTCDegradationPreference} degradation the preference asked for
 * @param {(rids: string[]) => void} [report] told the rids that run, before they are applied:
 *   the server moves the subscribers of a paused layer at once (`sending-layers`)
 */
export async function applyWantedLayers(sender, layers, wanted, uplink, degradation, report) {
  const params = /** @type {RTCRtpSendParameters & {degradationPreference?: RTCDegradationPreference}} */ (sender.getParameters());
  const encodings = params.encodings || [];
  if (encodings.length < 2 || layers.length < 2) return;
  const preference = underLimit(degradation, layers, wanted, uplink);
  let changed = params.degradationPreference !== preference;
  params.degradationPreference = preference;
  if (setRunning(encodings, layers, wanted, uplink)) changed = true;
  if (!changed) return;
  if (report) report(runningRids(encodings, layers));
  try {
    await sender.setParameters(params);
  } catch (err) {
    console.debug('edge-video: pausing layers failed', err);
  }
}
