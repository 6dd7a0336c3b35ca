package dev.empmix;

/**
 * The JNI surface of libempmix_engine (see {@code empmix_engine_jni.c} and
 * {@code include/empmix_engine.h}). Every method returns an {@code EmpmixResult} code and
 * writes its outputs into the arrays passed; strings are UTF-8 {@code byte[]}. Used by
 * {@link EmpMix}; apps call that class, not this one.
 */
final class EngineNative {
    static {
        System.loadLibrary("empmix_engine_jni");
    }

    private EngineNative() {}

    static final int OK = 0;
    static final int ERR_SHUT_DOWN = 5;

    static final int CONFIG_INGEST_KEY = 1, CONFIG_ENDPOINT = 2, CONFIG_CONFERENCE_ID = 3,
            CONFIG_DEVICE_MODEL = 4, CONFIG_LOCALE = 5, CONFIG_TIME_ZONE = 6, CONFIG_LIBRARY = 7,
            CONFIG_APP = 8, CONFIG_OS = 9;
    static final int CONFIG_FLUSH_AT = 20, CONFIG_FLUSH_INTERVAL_MS = 21, CONFIG_MAX_QUEUE = 22,
            CONFIG_MAX_IN_FLIGHT = 23, CONFIG_BACKOFF_BASE_MS = 24, CONFIG_BACKOFF_CAP_MS = 25,
            CONFIG_PERSIST = 26, CONFIG_LAST_TOUCH = 27, CONFIG_SCREEN = 28;

    static final byte PERSIST_APPEND = 1, PERSIST_REMOVE = 2, PERSIST_SAVE_STATE = 3;

    static native long configNew();
    static native void configFree(long config);
    static native int configString(long config, int key, byte[] a, byte[] b, byte[] c);
    static native int configNumber(long config, int key, long value);

    static native int create(long config, byte[] state, byte[][] records, long nowMs, long seed, long[] outEngine);
    static native void free(long engine);

    static native int track(long e, long now, byte[] name, byte[] propertiesJson);
    static native int pageView(long e, long now, byte[] url, byte[] conferenceId, byte[] referrer);
    static native int registration(long e, long now, byte[] conferenceId, byte[] formId);
    static native int checkin(long e, long now, byte[] conferenceId, byte[] method);
    static native int aiChat(long e, long now, byte[] conferenceId, long messageLength);
    static native int identify(long e, long now, byte[] userId);
    static native int alias(long e, long now, byte[] alias);
    static native int reset(long e, long now);
    static native int register(long e, byte[] propertiesJson, boolean once);
    static native int unregister(long e, byte[] key);
    static native int setOptedOut(long e, boolean optedOut);
    static native int createShare(long e, long now, byte[] channel, byte[] targetUrl, byte[] conferenceId, byte[][] out);
    static native int handleIncomingUrl(long e, long now, byte[] url, byte[][] out);

    static native int flush(long e, boolean shutdown, long[] outTicket);
    static native int progress(long e, long ticket, boolean[] out);
    static native int stats(long e, long[] out);

    static native int pollTransmit(long e, long now, boolean unload, int maxBytes, byte[][][] out, long[] outId);
    static native int handleResponse(long e, long now, long id, int status, byte[] retryAfter, byte[] body);
    static native int pollTimeout(long e, long now, long[] out);
    static native int handleTimeout(long e, long now);
    static native int pollPersist(long e, byte[][][] out);

    static native String resultMessage(int code);
    static native byte[] lastError();
}
