/** EmpMix browser analytics SDK. Load with `await EmpMix.init({ apiKey, endpoint })`. */

/** A property value: anything `JSON.stringify` turns into JSON. */
export type PropertyValue = string | number | boolean | null | PropertyValue[] | { [key: string]: PropertyValue };
/** Event properties: a plain object (sent as its `JSON.stringify` form). */
export type Properties = { [key: string]: PropertyValue | undefined };

/**
 * The options of {@link EmpMix.init}. Every value is checked by the engine's settings decoder
 * (in the core, `empmix_core::settings`): a value of the wrong type or out of range makes `init`
 * reject with an `Error` naming the option and what it must be (`[empmix] flushAt must be a
 * whole number above 0`); nothing falls back to a default. Numbers are whole numbers above 0.
 * Names are spelled as below: one of them in another spelling rejects too (`[empmix] api_key
 * is spelled apiKey`), as it would otherwise go unused. Options this version does not know are
 * ignored.
 */
export interface EmpMixOptions {
  /** The project's public ingest key (sent as `X-API-Key`, or `?api_key=` on beacons). */
  apiKey: string;
  /** Base URL of the ingest server, e.g. `https://analytics.example.com`. */
  endpoint: string;
  /** Names this site's storage keys (`empmix:<project>:…`). Default `"default"`. */
  project?: string;
  /** Conference id added to the typed seed events, shares and share opens when they do not name one. */
  conferenceId?: string;
  /** Where to load the engine from: a URL, a `Response`, bytes or a compiled module. Default: `empmix.wasm` next to this file. */
  wasm?: string | URL | Response | Promise<Response> | BufferSource | WebAssembly.Module;
  /** Send when this many events wait: 1 to 500. Default 20. Within 250 ms of the last request, a burst waits for a full batch (500) or the end of those 250 ms, so it goes as fewer, larger requests. */
  flushAt?: number;
  /** Send when the oldest event has waited this many milliseconds (a whole number). Default 10000. */
  flushInterval?: number;
  /** Most events held unsent (the oldest is dropped beyond): from `flushAt` to 1,000,000. Default 10000. */
  maxQueue?: number;
  /** Which opened share link gets the credit: the first (default) or the last. */
  attribution?: 'first' | 'last';
  /** Keep identity and unsent events in `localStorage` (default true; memory only when false or when storage is blocked). */
  persist?: boolean;
  /** Most events kept in `localStorage` (default 1000) and their total size in characters (default 2,000,000). */
  maxStoredEvents?: number;
  maxStoredBytes?: number;
  /** Track a `page_view` on load and on `pushState` / `popstate` navigation. Default true. */
  autoPageView?: boolean;
  /** Record a `share_open` when the address carries `_s=<code>`. Default true. */
  shareLinks?: boolean;
  /** Remove `_s` from the address bar with `history.replaceState`. Default true. */
  cleanUrl?: boolean;
  /** Log refused calls and errors with `console.warn`. Default false. */
  debug?: boolean;
}

export interface PageView extends Properties {
  /** Default: the current address. */
  url?: string;
  conferenceId?: string;
  /** Default: `document.referrer`. */
  referrer?: string;
}
/**
 * The typed events (`page_view`, `registration`, `checkin`, `ai_chat`) are built by the engine
 * from these arguments, as in every EmpMix SDK; any other properties are added on top (and win
 * over the typed ones). Without `conferenceId` the event is in the one given to `init`, else in
 * none (no `conference_id`).
 */
export interface Registration extends Properties { conferenceId?: string; formId?: string }
export interface Checkin extends Properties { conferenceId?: string; method: 'qr' | 'manual' | string }
/** `messageLength` must be a whole number (else the call returns `false`). */
export interface AiChat extends Properties { conferenceId?: string; messageLength: number }

export interface ShareLink {
  /** The new share code. */
  code: string;
  /** The target URL with `_s=<code>` added (any other `_s` replaced). */
  url: string;
}

export interface Stats {
  /** Events waiting to be sent. */
  queued: number;
  /** Events in requests awaiting an answer. */
  inFlight: number;
  delivered: number;
  /** Event sends that failed and were scheduled again. */
  retried: number;
  requests: number;
  /** Events dropped, in total and by reason. */
  dropped: number;
  droppedQueueFull: number;
  droppedExpired: number;
  droppedTooLarge: number;
  droppedRejected: number;
  droppedOptedOut: number;
  /** Stored records that could not be read at start (they are removed from storage). */
  corruptRecords: number;
  /** Stored events restored at start. */
  restored: number;
  /** Calls refused for invalid arguments (bad name, properties that are not an object, cyclic values…). */
  invalid: number;
  /** `localStorage` writes that failed (quota, blocked). */
  storageErrors: number;
  /** Events kept in memory only (storage full, over its bounds, or blocked). */
  notPersisted: number;
  /** Bodies handed to `navigator.sendBeacon` at unload. */
  beacons: number;
  /** Events sent a second time because a beacon's outcome was unknown (the page came back from
   * the back/forward cache after `pagehide`); the server keeps one of each. The web build only. */
  resent?: number;
  /** Events now in `localStorage`. */
  stored: number;
  /** Whether `localStorage` is in use. */
  persistent: boolean;
}

/**
 * The client. No method throws or waits (only `init` rejects, for a bad option): refused calls
 * return `false` (or `null`), are counted
 * in {@link EmpMix.stats} and, with `debug`, logged.
 */
export declare class EmpMix {
  /**
   * Loads the engine, restores stored identity and events, and starts (page view, share link).
   * Rejects when the engine cannot be loaded, or with an `Error` naming the first bad option
   * (see {@link EmpMixOptions}); then nothing is stored or sent.
   */
  static init(options: EmpMixOptions): Promise<EmpMix>;
  /** Records an event. `true` when queued. */
  track(name: string, properties?: Properties): boolean;
  pageView(properties?: PageView): boolean;
  registration(properties: Registration): boolean;
  checkin(properties: Checkin): boolean;
  aiChat(properties: AiChat): boolean;
  /** Events from now on carry `userId`; an `identify` event links the anonymous id to it. */
  identify(userId: string): boolean;
  /** Links another id of this user (an email hash, a CRM id) to the current one. */
  alias(id: string): boolean;
  /** Logout: a new anonymous id, no user, no super properties, no attribution. */
  reset(): boolean;
  /** Properties merged into every later event; `once` keeps values already registered. */
  register(properties: Properties, options?: { once?: boolean }): boolean;
  unregister(key: string): boolean;
  /** Stops tracking and discards waiting events (remembered across reloads). */
  optOut(): void;
  optIn(): void;
  readonly optedOut: boolean;
  /** A share link for `url` (default: this page) and a `share` event in `conferenceId` (default: the one given to `init`, else the `conference_id` super property); `null` if refused. */
  createShare(options: { channel: string; url?: string; conferenceId?: string }): ShareLink | null;
  /** Sends everything tracked so far; resolves `true` once delivered, `false` at the timeout (default 10 s). Never rejects. */
  flush(timeoutMs?: number): Promise<boolean>;
  readonly distinctId: string | null;
  readonly anonymousId: string | null;
  readonly sessionId: string | null;
  stats(): Stats;
}
/**
 * The browser and OS every event's context names (`context.browser`, `context.browser_version`,
 * `context.os`, `context.os_version`), each a string, empty when unknown. Names only, no version
 * in them: `Google Chrome`, `Chromium`, `Microsoft Edge`, `Opera`, `Brave`, `Samsung Internet`,
 * `Android WebView`, `Firefox`, `Safari`; `Windows`, `macOS`, `Linux`, `Android`, `iOS`,
 * `Chrome OS`. Versions are major versions (`156`); `os_version` only where the user-agent
 * string gives a real one (Android, iOS: `17.4`), not the frozen desktop ones.
 */
export interface BrowserInfo {
  browser: string;
  browser_version: string;
  os: string;
  os_version: string;
}
/**
 * What the SDK reports for a user agent: from `userAgentData` (its brands: a vendor's before
 * plain `Chromium`, never a GREASE filler such as `Not:A-Brand`; its `platform`) when it names
 * one, else from the user-agent string. Pure; exported for tests and for pages that want the
 * same names.
 */
export declare function detectBrowser(
  userAgent: string | undefined,
  userAgentData?: { brands?: { brand: string; version: string }[]; platform?: string } | null,
): BrowserInfo;
export default EmpMix;
