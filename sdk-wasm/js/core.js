// Generated from the core (empmix_core::frontend::js_module); do not edit by hand.
// UPDATE_CODES=1 cargo test -p empmix-core --test frontend_codes rewrites it.
// The error codes (sdk-core/src/code.rs) and their names by number:
const E_OK = 0;
const E_NULL_ARGUMENT = 1;
const E_INVALID_UTF8 = 2;
const E_INVALID_JSON = 3;
const E_INVALID_CONFIG = 4;
const E_SHUT_DOWN = 5;
const E_OPTED_OUT = 6;
const E_TIMEOUT = 7;
const E_INVALID_NAME = 8;
const E_INVALID_URL = 9;
const E_QUEUE_FULL = 10;
const E_TOO_LARGE = 11;
const E_STORAGE = 12;
const E_RUNTIME = 13;
const E_PANIC = 14;
const E_NOT_STARTED = 15;
const ERRORS = /*#__PURE__*/ 'ok,null_argument,invalid_utf8,invalid_json,invalid_config,shut_down,opted_out,timeout,invalid_name,invalid_url,queue_full,too_large,storage,runtime,panic,not_started'.split(',');
// The protocol (sdk-core/src/protocol/mod.rs, docs/protocol.md):
const EVENTS_PATH = '/api/analytics/events';
const TRACK_PATH = '/track';
const API_KEY_HEADER = 'X-API-Key';
const API_KEY_PARAM = 'api_key';
const SHARE_PARAM = '_s';
const BEACON_MAX_BYTES = 61440;
const EVENT_ID_LEN = 36;
const SHARE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SHARE_CODE_LEN = 12;
