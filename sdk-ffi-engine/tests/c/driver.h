/* A blocking driver of libempmix_engine for the test programs: the core's driver contract with
 * the tiny HTTP client (http.h), a store in memory, the wall clock and /dev/urandom. A mobile
 * app does the same with its own HTTP stack, a file and a timer. (Inline, so a program that
 * uses only some of it compiles under -Werror.) */
#ifndef EMPMIX_TEST_DRIVER_H
#define EMPMIX_TEST_DRIVER_H
#include <time.h>
#include "empmix_engine.h"
#define EXPECT_RESULT_MESSAGE empmix_engine_result_message
#define EXPECT_LAST_ERROR empmix_engine_last_error_message
#include "expect.h"
#include "http.h"

static inline uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t os_seed(void) {
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    CHECK(f && fread(&seed, sizeof seed, 1, f) == 1);
    fclose(f);
    return seed;
}

/* What an app's storage holds: the state and the live records by event id. */
#define MAX_RECORDS 512
typedef struct {
    char *state;
    char *ids[MAX_RECORDS];
    char *records[MAX_RECORDS];
    size_t count;
} Store;

static inline char *copy(const char *s, size_t len) {
    char *c = malloc(len + 1);
    memcpy(c, s, len);
    c[len] = 0;
    return c;
}

static inline void store_apply(Store *store, const EmpmixPersistOp *op) {
    switch (op->kind) {
    case EMPMIX_PERSIST_APPEND:
        CHECK(store->count < MAX_RECORDS);
        store->ids[store->count] = copy(op->event_id, strlen(op->event_id));
        store->records[store->count++] = copy(op->data, op->data_len);
        break;
    case EMPMIX_PERSIST_REMOVE:
        for (size_t i = 0; i < op->event_id_count; i++)
            for (size_t j = 0; j < store->count; j++)
                if (strcmp(store->ids[j], op->event_ids[i]) == 0) {
                    free(store->ids[j]);
                    free(store->records[j]);
                    store->ids[j] = store->ids[store->count - 1];
                    store->records[j] = store->records[--store->count];
                    break;
                }
        break;
    case EMPMIX_PERSIST_SAVE_STATE:
        free(store->state);
        store->state = copy(op->data, op->data_len);
        break;
    }
}

static inline void store_free(Store *store) {
    free(store->state);
    for (size_t i = 0; i < store->count; i++) {
        free(store->ids[i]);
        free(store->records[i]);
    }
    memset(store, 0, sizeof *store);
}

/* Step 2 of the contract with blocking sends: persist, send (answer at once), until nothing is
 * due. `store` may be NULL for an engine without persistence. Returns the next deadline (0: none). */
static inline uint64_t drive(EmpmixEngine *engine, Store *store) {
    for (;;) {
        EmpmixPersistOp *op = NULL;
        for (;;) {
            OK(empmix_engine_poll_persist(engine, &op));
            if (!op) break;
            CHECK(store != NULL);
            store_apply(store, op);
            empmix_engine_persist_op_free(op);
        }
        EmpmixRequest *req = NULL;
        OK(empmix_engine_poll_transmit(engine, now_ms(), &req));
        if (!req) break;
        const char *names[8], *values[8];
        CHECK(req->header_count <= 8 && strcmp(req->method, "POST") == 0);
        for (size_t i = 0; i < req->header_count; i++) {
            names[i] = req->headers[i].name;
            values[i] = req->headers[i].value;
        }
        HttpAnswer a = http_post(req->url, names, values, req->header_count, req->body, req->body_len);
        uint64_t id = req->id;
        empmix_engine_request_free(req);
        OK(empmix_engine_handle_response(engine, now_ms(), id, (uint16_t)a.status,
                                         a.retry_after[0] ? a.retry_after : NULL, (const uint8_t *)a.body,
                                         a.body_len));
        free(a.body);
    }
    bool armed = false;
    uint64_t at = 0;
    OK(empmix_engine_poll_timeout(engine, now_ms(), &armed, &at));
    return armed ? (at == 0 ? 1 : at) : 0;
}

/* Flushes and drives (sleeping until each deadline) until the ticket is done or `timeout_ms`. */
static inline int flush_wait(EmpmixEngine *engine, Store *store, uint64_t timeout_ms) {
    uint64_t ticket = 0, give_up = now_ms() + timeout_ms;
    OK(empmix_engine_flush(engine, &ticket));
    for (;;) {
        uint64_t deadline = drive(engine, store);
        bool done = false;
        OK(empmix_engine_is_flushed(engine, ticket, &done));
        if (done) return 1;
        uint64_t now = now_ms();
        if (now >= give_up) return 0;
        if (deadline > now) {
            uint64_t wait = deadline - now < 50 ? deadline - now : 50;
            nanosleep(&(struct timespec){.tv_nsec = (long)wait * 1000000}, NULL);
        }
        OK(empmix_engine_handle_timeout(engine, now_ms()));
    }
}

/* An engine configured from the environment (EMPMIX_SHARED_CONTEXT=0: every event keeps its
   own context), continuing from `store` (NULL: memory only). */
static inline EmpmixEngine *engine_for(Store *store) {
    EmpmixEngineConfig *config = empmix_engine_config_new();
    CHECK(config != NULL);
    OK(empmix_engine_config_set_ingest_key(config, env_or("EMPMIX_INGEST_KEY", "missing-key")));
    OK(empmix_engine_config_set_endpoint(config, env_or("EMPMIX_ENDPOINT", "http://127.0.0.1:9")));
    OK(empmix_engine_config_set_flush_interval_ms(config, 200));
    OK(empmix_engine_config_set_backoff_base_ms(config, 50));
    OK(empmix_engine_config_set_backoff_cap_ms(config, 200));
    OK(empmix_engine_config_set_persist(config, store != NULL));
    OK(empmix_engine_config_set_library(config, "empmix-c-engine-tests", "0.1.0"));
    OK(empmix_engine_config_set_app(config, "EmpMix engine tests", "1.2.3", "45"));
    OK(empmix_engine_config_set_os(config, "Android", "14"));
    OK(empmix_engine_config_set_device_model(config, "Pixel 8"));
    OK(empmix_engine_config_set_locale(config, "de-DE"));
    OK(empmix_engine_config_set_screen_size(config, 1080, 2400));
    OK(empmix_engine_config_set_time_zone(config, "Europe/Berlin"));
    OK(empmix_engine_config_set_shared_context(config, env_on("EMPMIX_SHARED_CONTEXT")));
    EmpmixEngine *engine = NULL;
    OK(empmix_engine_create(config, store ? store->state : NULL, store ? (const char *const *)store->records : NULL,
                            store ? store->count : 0, now_ms(), os_seed(), &engine));
    empmix_engine_config_free(config);
    CHECK(engine != NULL);
    return engine;
}
#endif
