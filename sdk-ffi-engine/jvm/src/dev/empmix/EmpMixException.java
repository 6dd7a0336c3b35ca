package dev.empmix;

import java.nio.charset.StandardCharsets;

/** A call the library refused, with its stable code (the core's {@code ErrorCode}). */
public final class EmpMixException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The {@code EmpmixResult} number, for example 6 for {@code opted_out}. */
    public final int code;

    EmpMixException(int code, String message) {
        super(message);
        this.code = code;
    }

    /** Throws for a code other than OK, with the library's message and this thread's detail. */
    static void check(int code) {
        if (code != EngineNative.OK) {
            byte[] detail = EngineNative.lastError();
            String text = detail == null ? "" : new String(detail, StandardCharsets.UTF_8);
            throw new EmpMixException(code, EngineNative.resultMessage(code) + ": " + text);
        }
    }
}
