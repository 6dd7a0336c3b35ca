/* JNI glue between dev.empmix.EngineNative (Java) and libempmix_engine (C).
 *
 * Compiled against the JDK's (or the NDK's) jni.h into libempmix_engine_jni, which links
 * libempmix_engine. Every method is a static native of EngineNative and returns the library's
 * EmpmixResult; outputs go into small arrays the caller passes. Strings cross as byte[] holding
 * real UTF-8 (Java's String.getBytes(UTF_8)), not JNI's "modified UTF-8", so that characters
 * outside the BMP and NUL reach the library unchanged. An engine is a jlong holding the pointer;
 * the Java side never passes one after freeing it. */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "empmix_engine.h"

/* JNI passes the class to every static native; most do not need it. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define ENGINE(h) ((const EmpmixEngine *)(intptr_t)(h))
#define CONFIG(h) ((EmpmixEngineConfig *)(intptr_t)(h))

/* A NUL-terminated copy of a byte[] (NULL for null); free with free(). */
static char *bytes_to_c(JNIEnv *env, jbyteArray bytes) {
    if (bytes == NULL) return NULL;
    jsize len = (*env)->GetArrayLength(env, bytes);
    char *out = malloc((size_t)len + 1);
    if (out == NULL) return NULL;
    (*env)->GetByteArrayRegion(env, bytes, 0, len, (jbyte *)out);
    out[len] = 0;
    return out;
}

static jbyteArray c_to_bytes(JNIEnv *env, const char *data, size_t len) {
    jbyteArray out = (*env)->NewByteArray(env, (jsize)len);
    if (out != NULL) (*env)->SetByteArrayRegion(env, out, 0, (jsize)len, (const jbyte *)data);
    return out;
}

static jbyteArray str_to_bytes(JNIEnv *env, const char *s) { return c_to_bytes(env, s, strlen(s)); }

static jobjectArray new_byte_arrays(JNIEnv *env, jsize n) {
    jclass bytes = (*env)->FindClass(env, "[B");
    return bytes == NULL ? NULL : (*env)->NewObjectArray(env, n, bytes, NULL);
}

/* Calls `call` with up to three strings converted; frees them after. */
#define WITH3(a, b, c, call)                                                            \
    char *a##_ = bytes_to_c(env, a), *b##_ = bytes_to_c(env, b), *c##_ = bytes_to_c(env, c); \
    jint rc_ = (jint)(call);                                                            \
    free(a##_);                                                                         \
    free(b##_);                                                                         \
    free(c##_);                                                                         \
    return rc_

JNIEXPORT jlong JNICALL Java_dev_empmix_EngineNative_configNew(JNIEnv *env, jclass cls) {
    return (jlong)(intptr_t)empmix_engine_config_new();
}

JNIEXPORT void JNICALL Java_dev_empmix_EngineNative_configFree(JNIEnv *env, jclass cls, jlong config) {
    empmix_engine_config_free(CONFIG(config));
}

/* String settings; the keys are EngineNative's CONFIG_* constants. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_configString(JNIEnv *env, jclass cls, jlong config, jint key,
                                                                 jbyteArray a, jbyteArray b, jbyteArray c) {
    EmpmixEngineConfig *cfg = CONFIG(config);
    char *a_ = bytes_to_c(env, a), *b_ = bytes_to_c(env, b), *c_ = bytes_to_c(env, c);
    EmpmixResult rc;
    switch (key) {
    case 1: rc = empmix_engine_config_set_ingest_key(cfg, a_); break;
    case 2: rc = empmix_engine_config_set_endpoint(cfg, a_); break;
    case 3: rc = empmix_engine_config_set_conference_id(cfg, a_); break;
    case 4: rc = empmix_engine_config_set_device_model(cfg, a_); break;
    case 5: rc = empmix_engine_config_set_locale(cfg, a_); break;
    case 6: rc = empmix_engine_config_set_time_zone(cfg, a_); break;
    case 7: rc = empmix_engine_config_set_library(cfg, a_, b_); break;
    case 8: rc = empmix_engine_config_set_app(cfg, a_, b_, c_); break;
    case 9: rc = empmix_engine_config_set_os(cfg, a_, b_); break;
    default: rc = EMPMIX_ERR_INVALID_CONFIG;
    }
    free(a_);
    free(b_);
    free(c_);
    return (jint)rc;
}

/* Number and flag settings; the keys are EngineNative's CONFIG_* constants. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_configNumber(JNIEnv *env, jclass cls, jlong config, jint key,
                                                                 jlong value) {
    EmpmixEngineConfig *cfg = CONFIG(config);
    uint32_t v = value < 0 ? 0 : value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
    switch (key) {
    case 20: return (jint)empmix_engine_config_set_flush_at(cfg, v);
    case 21: return (jint)empmix_engine_config_set_flush_interval_ms(cfg, v);
    case 22: return (jint)empmix_engine_config_set_max_queue(cfg, v);
    case 23: return (jint)empmix_engine_config_set_max_in_flight(cfg, v);
    case 24: return (jint)empmix_engine_config_set_backoff_base_ms(cfg, v);
    case 25: return (jint)empmix_engine_config_set_backoff_cap_ms(cfg, v);
    case 26: return (jint)empmix_engine_config_set_persist(cfg, value != 0);
    case 27: return (jint)empmix_engine_config_set_last_touch(cfg, value != 0);
    case 28: /* the screen: width in the high 32 bits, height in the low */
        return (jint)empmix_engine_config_set_screen_size(cfg, (uint32_t)((uint64_t)value >> 32),
                                                          (uint32_t)((uint64_t)value & 0xFFFFFFFFu));
    default: return (jint)EMPMIX_ERR_INVALID_CONFIG;
    }
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_create(JNIEnv *env, jclass cls, jlong config, jbyteArray state,
                                                           jobjectArray records, jlong now, jlong seed,
                                                           jlongArray out_engine) {
    jsize count = records == NULL ? 0 : (*env)->GetArrayLength(env, records);
    char **texts = calloc((size_t)count + 1, sizeof *texts);
    if (texts == NULL) return (jint)EMPMIX_ERR_PANIC;
    for (jsize i = 0; i < count; i++) {
        jbyteArray r = (jbyteArray)(*env)->GetObjectArrayElement(env, records, i);
        texts[i] = bytes_to_c(env, r);
        (*env)->DeleteLocalRef(env, r);
    }
    char *state_ = bytes_to_c(env, state);
    EmpmixEngine *engine = NULL;
    EmpmixResult rc = empmix_engine_create(CONFIG(config), state_, (const char *const *)texts, (size_t)count,
                                           (uint64_t)now, (uint64_t)seed, &engine);
    for (jsize i = 0; i < count; i++) free(texts[i]);
    free(texts);
    free(state_);
    jlong handle = (jlong)(intptr_t)engine;
    (*env)->SetLongArrayRegion(env, out_engine, 0, 1, &handle);
    return (jint)rc;
}

JNIEXPORT void JNICALL Java_dev_empmix_EngineNative_free(JNIEnv *env, jclass cls, jlong engine) {
    empmix_engine_free((EmpmixEngine *)(intptr_t)engine);
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_track(JNIEnv *env, jclass cls, jlong e, jlong now, jbyteArray name,
                                                          jbyteArray json) {
    jbyteArray none = NULL;
    WITH3(name, json, none, empmix_engine_track(ENGINE(e), (uint64_t)now, name_, json_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_pageView(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                             jbyteArray url, jbyteArray conf, jbyteArray referrer) {
    WITH3(url, conf, referrer, empmix_engine_page_view(ENGINE(e), (uint64_t)now, url_, conf_, referrer_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_registration(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                 jbyteArray conf, jbyteArray form) {
    jbyteArray none = NULL;
    WITH3(conf, form, none, empmix_engine_registration(ENGINE(e), (uint64_t)now, conf_, form_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_checkin(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                            jbyteArray conf, jbyteArray method) {
    jbyteArray none = NULL;
    WITH3(conf, method, none, empmix_engine_checkin(ENGINE(e), (uint64_t)now, conf_, method_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_aiChat(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                           jbyteArray conf, jlong length) {
    jbyteArray none = NULL, none2 = NULL;
    WITH3(conf, none, none2, empmix_engine_ai_chat(ENGINE(e), (uint64_t)now, conf_, (uint64_t)length));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_identify(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                             jbyteArray user) {
    jbyteArray none = NULL, none2 = NULL;
    WITH3(user, none, none2, empmix_engine_identify(ENGINE(e), (uint64_t)now, user_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_alias(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                          jbyteArray alias) {
    jbyteArray none = NULL, none2 = NULL;
    WITH3(alias, none, none2, empmix_engine_alias(ENGINE(e), (uint64_t)now, alias_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_reset(JNIEnv *env, jclass cls, jlong e, jlong now) {
    return (jint)empmix_engine_reset(ENGINE(e), (uint64_t)now);
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_register(JNIEnv *env, jclass cls, jlong e, jbyteArray json,
                                                             jboolean once) {
    jbyteArray none = NULL, none2 = NULL;
    WITH3(json, none, none2, empmix_engine_register(ENGINE(e), json_, once == JNI_TRUE));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_unregister(JNIEnv *env, jclass cls, jlong e, jbyteArray key) {
    jbyteArray none = NULL, none2 = NULL;
    WITH3(key, none, none2, empmix_engine_unregister(ENGINE(e), key_));
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_setOptedOut(JNIEnv *env, jclass cls, jlong e, jboolean out) {
    return (jint)empmix_engine_set_opted_out(ENGINE(e), out == JNI_TRUE);
}

/* out: byte[2][] receiving the code and the URL. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_createShare(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                jbyteArray channel, jbyteArray target,
                                                                jbyteArray conf, jobjectArray out) {
    char *channel_ = bytes_to_c(env, channel), *target_ = bytes_to_c(env, target), *conf_ = bytes_to_c(env, conf);
    char *code = NULL, *url = NULL;
    EmpmixResult rc = empmix_engine_create_share(ENGINE(e), (uint64_t)now, channel_, target_, conf_, &code, &url);
    if (rc == EMPMIX_OK) {
        (*env)->SetObjectArrayElement(env, out, 0, str_to_bytes(env, code));
        (*env)->SetObjectArrayElement(env, out, 1, str_to_bytes(env, url));
    }
    empmix_engine_string_free(code);
    empmix_engine_string_free(url);
    free(channel_);
    free(target_);
    free(conf_);
    return (jint)rc;
}

/* out: byte[1][] receiving the URL without _s. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_handleIncomingUrl(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                      jbyteArray url, jobjectArray out) {
    char *url_ = bytes_to_c(env, url), *clean = NULL;
    EmpmixResult rc = empmix_engine_handle_incoming_url(ENGINE(e), (uint64_t)now, url_, &clean);
    if (rc == EMPMIX_OK) (*env)->SetObjectArrayElement(env, out, 0, str_to_bytes(env, clean));
    empmix_engine_string_free(clean);
    free(url_);
    return (jint)rc;
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_flush(JNIEnv *env, jclass cls, jlong e, jboolean shutdown,
                                                          jlongArray out_ticket) {
    uint64_t ticket = 0;
    EmpmixResult rc = shutdown == JNI_TRUE ? empmix_engine_shutdown(ENGINE(e), &ticket)
                                           : empmix_engine_flush(ENGINE(e), &ticket);
    jlong t = (jlong)ticket;
    (*env)->SetLongArrayRegion(env, out_ticket, 0, 1, &t);
    return (jint)rc;
}

/* out[0]: whether the flush `ticket` is done; out[1]: whether the engine is idle. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_progress(JNIEnv *env, jclass cls, jlong e, jlong ticket,
                                                             jbooleanArray out) {
    bool done = false, idle = false;
    EmpmixResult rc = ticket > 0 ? empmix_engine_is_flushed(ENGINE(e), (uint64_t)ticket, &done) : EMPMIX_OK;
    if (rc == EMPMIX_OK) rc = empmix_engine_is_idle(ENGINE(e), &idle);
    jboolean values[2] = {done ? JNI_TRUE : JNI_FALSE, idle ? JNI_TRUE : JNI_FALSE};
    (*env)->SetBooleanArrayRegion(env, out, 0, 2, values);
    return (jint)rc;
}

/* out: long[10], EmpmixStats in field order. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_stats(JNIEnv *env, jclass cls, jlong e, jlongArray out) {
    EmpmixStats s;
    EmpmixResult rc = empmix_engine_stats(ENGINE(e), &s);
    if (rc != EMPMIX_OK) return (jint)rc;
    jlong v[10] = {(jlong)s.queued,           (jlong)s.in_flight,          (jlong)s.delivered,
                   (jlong)s.retried,          (jlong)s.dropped_queue_full, (jlong)s.dropped_expired,
                   (jlong)s.dropped_too_large, (jlong)s.dropped_rejected,  (jlong)s.dropped_opted_out,
                   (jlong)s.dropped_lost};
    (*env)->SetLongArrayRegion(env, out, 0, 10, v);
    return (jint)rc;
}

/* The next request (unload: the background variant, bodies of at most max_bytes). out[0]
 * receives byte[][] {url, body, header name, header value, ...} or stays null; out_id[0] its id. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_pollTransmit(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                 jboolean unload, jint max_bytes,
                                                                 jobjectArray out, jlongArray out_id) {
    EmpmixRequest *req = NULL;
    EmpmixResult rc = unload == JNI_TRUE
                          ? empmix_engine_poll_unload_transmit(ENGINE(e), (uint64_t)now,
                                                               max_bytes < 0 ? 0 : (size_t)max_bytes, &req)
                          : empmix_engine_poll_transmit(ENGINE(e), (uint64_t)now, &req);
    if (rc != EMPMIX_OK || req == NULL) return (jint)rc;
    jobjectArray parts = new_byte_arrays(env, (jsize)(2 + 2 * req->header_count));
    if (parts != NULL) {
        (*env)->SetObjectArrayElement(env, parts, 0, str_to_bytes(env, req->url));
        (*env)->SetObjectArrayElement(env, parts, 1, c_to_bytes(env, (const char *)req->body, req->body_len));
        for (size_t i = 0; i < req->header_count; i++) {
            (*env)->SetObjectArrayElement(env, parts, (jsize)(2 + 2 * i), str_to_bytes(env, req->headers[i].name));
            (*env)->SetObjectArrayElement(env, parts, (jsize)(3 + 2 * i), str_to_bytes(env, req->headers[i].value));
        }
        (*env)->SetObjectArrayElement(env, out, 0, parts);
    }
    jlong id = (jlong)req->id;
    (*env)->SetLongArrayRegion(env, out_id, 0, 1, &id);
    empmix_engine_request_free(req);
    return (jint)(parts == NULL ? EMPMIX_ERR_PANIC : rc);
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_handleResponse(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                   jlong id, jint status, jbyteArray retry_after,
                                                                   jbyteArray body) {
    char *retry = bytes_to_c(env, retry_after);
    jsize len = body == NULL ? 0 : (*env)->GetArrayLength(env, body);
    jbyte *bytes = body == NULL ? NULL : (*env)->GetByteArrayElements(env, body, NULL);
    uint16_t code = status < 0 || status > 65535 ? 0 : (uint16_t)status;
    EmpmixResult rc = empmix_engine_handle_response(ENGINE(e), (uint64_t)now, (uint64_t)id, code, retry,
                                                    (const uint8_t *)bytes, (size_t)len);
    if (bytes != NULL) (*env)->ReleaseByteArrayElements(env, body, bytes, JNI_ABORT);
    free(retry);
    return (jint)rc;
}

/* out[0]: the next deadline in ms, or -1 for none. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_pollTimeout(JNIEnv *env, jclass cls, jlong e, jlong now,
                                                                jlongArray out) {
    bool armed = false;
    uint64_t at = 0;
    EmpmixResult rc = empmix_engine_poll_timeout(ENGINE(e), (uint64_t)now, &armed, &at);
    jlong v = armed ? (jlong)at : -1;
    (*env)->SetLongArrayRegion(env, out, 0, 1, &v);
    return (jint)rc;
}

JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_handleTimeout(JNIEnv *env, jclass cls, jlong e, jlong now) {
    return (jint)empmix_engine_handle_timeout(ENGINE(e), (uint64_t)now);
}

/* out[0] receives byte[][] {kind (one byte: 1 append, 2 remove, 3 save state), then for append
 * the id and the record, for remove the ids, for save state the state} or stays null. */
JNIEXPORT jint JNICALL Java_dev_empmix_EngineNative_pollPersist(JNIEnv *env, jclass cls, jlong e, jobjectArray out) {
    EmpmixPersistOp *op = NULL;
    EmpmixResult rc = empmix_engine_poll_persist(ENGINE(e), &op);
    if (rc != EMPMIX_OK || op == NULL) return (jint)rc;
    size_t n = op->kind == EMPMIX_PERSIST_APPEND ? 3 : op->kind == EMPMIX_PERSIST_REMOVE ? 1 + op->event_id_count : 2;
    jobjectArray parts = new_byte_arrays(env, (jsize)n);
    if (parts != NULL) {
        char kind = (char)op->kind;
        (*env)->SetObjectArrayElement(env, parts, 0, c_to_bytes(env, &kind, 1));
        if (op->kind == EMPMIX_PERSIST_APPEND) {
            (*env)->SetObjectArrayElement(env, parts, 1, str_to_bytes(env, op->event_id));
            (*env)->SetObjectArrayElement(env, parts, 2, c_to_bytes(env, op->data, op->data_len));
        } else if (op->kind == EMPMIX_PERSIST_REMOVE) {
            for (size_t i = 0; i < op->event_id_count; i++)
                (*env)->SetObjectArrayElement(env, parts, (jsize)(1 + i), str_to_bytes(env, op->event_ids[i]));
        } else {
            (*env)->SetObjectArrayElement(env, parts, 1, c_to_bytes(env, op->data, op->data_len));
        }
        (*env)->SetObjectArrayElement(env, out, 0, parts);
    }
    empmix_engine_persist_op_free(op);
    return (jint)(parts == NULL ? EMPMIX_ERR_PANIC : rc);
}

JNIEXPORT jstring JNICALL Java_dev_empmix_EngineNative_resultMessage(JNIEnv *env, jclass cls, jint code) {
    return (*env)->NewStringUTF(env, empmix_engine_result_message((uint32_t)code));
}

/* The calling thread's last error detail as UTF-8. */
JNIEXPORT jbyteArray JNICALL Java_dev_empmix_EngineNative_lastError(JNIEnv *env, jclass cls) {
    size_t len = empmix_engine_last_error_message(NULL, 0);
    char *buf = malloc(len + 1);
    if (buf == NULL) return NULL;
    empmix_engine_last_error_message(buf, len + 1);
    jbyteArray out = c_to_bytes(env, buf, len);
    free(buf);
    return out;
}
