"""A second foreign caller: Python ctypes tracks one page view end to end through libempmix.

Usage: python3 track.py /path/to/libempmix.so  (endpoint and key from EMPMIX_ENDPOINT,
EMPMIX_INGEST_KEY, conference from EMPMIX_CONFERENCE). Exits non-zero on any failure."""
import ctypes
import os
import sys


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

    # The opaque configuration: a handle and one setter per setting.
    lib.empmix_config_new.restype = ctypes.c_void_p
    lib.empmix_config_free.argtypes = [ctypes.c_void_p]
    for setter in ("ingest_key", "endpoint", "locale", "time_zone", "device_model"):
        getattr(lib, "empmix_config_set_" + setter).argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.empmix_config_set_gzip.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    lib.empmix_config_set_app.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.empmix_config_set_os.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.empmix_config_set_screen_size.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
    lib.empmix_client_create.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    config = lib.empmix_config_new()
    assert config
    ok(lib.empmix_config_set_ingest_key(config, os.environ["EMPMIX_INGEST_KEY"].encode()), "set_ingest_key")
    ok(lib.empmix_config_set_endpoint(config, os.environ["EMPMIX_ENDPOINT"].encode()), "set_endpoint")
    ok(lib.empmix_config_set_gzip(config, True), "set_gzip")
    ok(lib.empmix_config_set_app(config, b"EmpMix Python", b"2.0", None), "set_app")
    ok(lib.empmix_config_set_os(config, b"Android", b"14"), "set_os")
    ok(lib.empmix_config_set_device_model(config, b"Pixel 8"), "set_device_model")
    ok(lib.empmix_config_set_locale(config, b"en-GB"), "set_locale")
    ok(lib.empmix_config_set_screen_size(config, 1080, 2400), "set_screen_size")
    ok(lib.empmix_config_set_time_zone(config, b"Europe/London"), "set_time_zone")
    # Bad UTF-8 in a setter is a code, not a crash.
    assert lib.empmix_config_set_locale(config, b"\xff") == 2
    client = ctypes.c_void_p()
    ok(lib.empmix_client_create(config, ctypes.byref(client)), "client_create")
    lib.empmix_config_free(config)
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
