"""A second foreign caller: Python ctypes tracks one page view end to end through libempmix.

Usage: python3 track.py /path/to/libempmix.so  (endpoint and key from EMPMIX_ENDPOINT,
EMPMIX_INGEST_KEY, conference from EMPMIX_CONFERENCE). Exits non-zero on any failure."""
import ctypes
import os
import sys


class Config(ctypes.Structure):
    _fields_ = [
        ("ingest_key", ctypes.c_char_p),
        ("endpoint", ctypes.c_char_p),
        ("data_dir", ctypes.c_char_p),
        ("flush_at", ctypes.c_uint32),
        ("flush_interval_ms", ctypes.c_uint32),
        ("max_queue", ctypes.c_uint32),
        ("request_timeout_ms", ctypes.c_uint32),
        ("gzip", ctypes.c_bool),
        ("debug", ctypes.c_bool),
    ]


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "queued", "in_flight", "delivered", "retried", "dropped_queue_full", "dropped_expired",
        "dropped_too_large", "dropped_rejected", "dropped_opted_out", "dropped_lost")]


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.empmix_result_message.restype = ctypes.c_char_p
    lib.empmix_version.restype = ctypes.c_char_p

    def ok(code, what):
        if code != 0:
            buf = ctypes.create_string_buffer(256)
            lib.empmix_last_error_message(buf, 256)
            raise SystemExit(f"{what}: {lib.empmix_result_message(code).decode()} ({buf.value.decode()})")

    config = Config()
    lib.empmix_config_init(ctypes.byref(config))
    config.ingest_key = os.environ["EMPMIX_INGEST_KEY"].encode()
    config.endpoint = os.environ["EMPMIX_ENDPOINT"].encode()
    config.gzip = True
    client = ctypes.c_void_p()
    ok(lib.empmix_client_new(ctypes.byref(config), ctypes.byref(client)), "client_new")
    conf = os.environ.get("EMPMIX_CONFERENCE", "conf-python").encode()
    ok(lib.empmix_page_view(client, b"https://m-app.example/from-python", conf, None), "page_view")
    ok(lib.empmix_track(client, "python_event".encode(), '{"lang":"python","café":"ok"}'.encode()), "track")
    # Bad input through ctypes is an error code too.
    assert lib.empmix_track(client, b"x", b"{broken") == 3
    ok(lib.empmix_flush(client, ctypes.c_uint32(10000)), "flush")
    stats = Stats()
    ok(lib.empmix_stats(client, ctypes.byref(stats)), "stats")
    assert stats.delivered == 2, stats.delivered
    ok(lib.empmix_shutdown(client, ctypes.c_uint32(5000)), "shutdown")
    lib.empmix_client_free(client)
    print(f"PYTHON_OK {lib.empmix_version().decode()}")


main()
