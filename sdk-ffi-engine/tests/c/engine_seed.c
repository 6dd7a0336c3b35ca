/* The seed scenario through the engine ABI, driven by a blocking HTTP client: A views and
 * shares, B opens A's link and shares, C opens B's link, identifies, registers, checks in and
 * chats. Then a persisted engine is "killed" with a request in flight and its successor sends
 * every stored event once; and bad input returns codes. Prints the share codes; the Rust harness
 * checks the server's summary and share tree. */
#include "driver.h"

static void seed_chain(const char *conf) {
    char target[256];
    snprintf(target, sizeof target, "https://m-app.example/conf/%s", conf);
    EmpmixEngine *a = engine_for(NULL), *b = engine_for(NULL), *c = engine_for(NULL);
    OK(empmix_engine_page_view(a, now_ms(), target, conf, NULL));
    char *code_a = NULL, *url_a = NULL;
    OK(empmix_engine_create_share(a, now_ms(), "wechat", target, conf, &code_a, &url_a));
    CHECK(strstr(url_a, "_s=") != NULL && strstr(url_a, code_a) != NULL);

    char *clean = NULL;
    OK(empmix_engine_handle_incoming_url(b, now_ms(), url_a, &clean));
    CHECK(strcmp(clean, target) == 0);
    OK(empmix_engine_page_view(b, now_ms(), clean, conf, NULL));
    char *code_b = NULL, *url_b = NULL;
    OK(empmix_engine_create_share(b, now_ms(), "link", clean, conf, &code_b, &url_b));
    empmix_engine_string_free(clean);

    char *clean_c = NULL;
    OK(empmix_engine_handle_incoming_url(c, now_ms(), url_b, &clean_c));
    empmix_engine_string_free(clean_c);
    OK(empmix_engine_page_view(c, now_ms(), target, conf, "https://chat.example/"));
    OK(empmix_engine_identify(c, now_ms(), "user-c"));
    OK(empmix_engine_registration(c, now_ms(), conf, "form-1"));
    OK(empmix_engine_checkin(c, now_ms(), conf, "qr"));
    OK(empmix_engine_ai_chat(c, now_ms(), conf, 42));
    OK(empmix_engine_track(c, now_ms(), "custom_event", "{\"nested\":{\"ok\":[1,2,3]},\"emoji\":\"\xF0\x9F\x8E\x89\"}"));

    CHECK(flush_wait(a, NULL, 10000) && flush_wait(b, NULL, 10000) && flush_wait(c, NULL, 10000));
    EmpmixStats stats;
    OK(empmix_engine_stats(c, &stats));
    CHECK(stats.delivered == 7); /* share_open, page_view, identify, registration, checkin, ai_chat, custom */
    CHECK(stats.queued == 0 && stats.in_flight == 0);

    printf("CODE_A %s\nCODE_B %s\n", code_a, code_b);
    empmix_engine_string_free(code_a);
    empmix_engine_string_free(url_a);
    empmix_engine_string_free(code_b);
    empmix_engine_string_free(url_b);
    uint64_t ticket;
    OK(empmix_engine_shutdown(a, &ticket));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_engine_track(a, now_ms(), "late", NULL));
    bool idle = false;
    OK(empmix_engine_is_idle(a, &idle));
    CHECK(idle);
    empmix_engine_free(a);
    empmix_engine_free(b);
    empmix_engine_free(c);
}

/* Tracks `n` page views with persistence, takes one request out and never answers it (the
 * process dies), then a new engine from the store sends each stored event once. */
static void restart_from_storage(const char *conf, int n) {
    Store store = {0};
    EmpmixEngine *first = engine_for(&store);
    char url[128];
    for (int i = 0; i < n; i++) {
        snprintf(url, sizeof url, "https://m-app.example/persist/%d", i);
        OK(empmix_engine_page_view(first, now_ms(), url, conf, NULL));
    }
    uint64_t ticket;
    OK(empmix_engine_flush(first, &ticket));
    for (;;) {
        EmpmixPersistOp *op = NULL;
        OK(empmix_engine_poll_persist(first, &op));
        if (!op) break;
        store_apply(&store, op);
        empmix_engine_persist_op_free(op);
    }
    CHECK(store.count == (size_t)n); /* every event is durable */
    EmpmixRequest *lost = NULL;
    OK(empmix_engine_poll_transmit(first, now_ms(), &lost));
    CHECK(lost != NULL && lost->events == (size_t)n);
    empmix_engine_free(first);   /* the "crash": the request is never answered */
    empmix_engine_request_free(lost); /* and outlives its engine */

    EmpmixEngine *second = engine_for(&store);
    CHECK(flush_wait(second, &store, 10000));
    EmpmixStats stats;
    OK(empmix_engine_stats(second, &stats));
    CHECK(stats.delivered == (uint64_t)n);
    CHECK(store.count == 0); /* removed after the 2xx */
    printf("PERSIST_SENT %llu\n", (unsigned long long)stats.delivered);
    empmix_engine_free(second);
    store_free(&store);
}

static void bad_input(void) {
    EmpmixEngine *engine = NULL;
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_engine_create(NULL, NULL, NULL, 0, now_ms(), 1, &engine));
    EmpmixEngineConfig *config = empmix_engine_config_new();
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_engine_create(config, NULL, NULL, 0, now_ms(), 1, &engine));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_engine_config_set_locale(config, "bad\xC3\x28"));
    OK(empmix_engine_config_set_ingest_key(config, "k"));
    OK(empmix_engine_config_set_endpoint(config, "ftp://nope"));
    EXPECT(EMPMIX_ERR_INVALID_CONFIG, empmix_engine_create(config, NULL, NULL, 0, now_ms(), 1, &engine));
    char detail[8];
    size_t needed = empmix_engine_last_error_message(detail, sizeof detail);
    CHECK(needed > sizeof detail && strlen(detail) == sizeof detail - 1);
    OK(empmix_engine_config_set_endpoint(config, "http://127.0.0.1:9"));
    OK(empmix_engine_create(config, "not a state", NULL, 0, now_ms(), 1, &engine));
    empmix_engine_config_free(config);
    EXPECT(EMPMIX_ERR_INVALID_JSON, empmix_engine_track(engine, now_ms(), "x", "{\"unterminated\":"));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_engine_identify(engine, now_ms(), "\xFF"));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_engine_poll_timeout(engine, now_ms(), NULL, NULL));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_engine_stats(NULL, NULL));
    /* Nothing listens on port 9: the request fails and is retried, never crashes. */
    OK(empmix_engine_track(engine, now_ms(), "x", NULL));
    CHECK(!flush_wait(engine, NULL, 300));
    EmpmixStats stats;
    OK(empmix_engine_stats(engine, &stats));
    CHECK(stats.retried >= 1 && stats.delivered == 0);
    empmix_engine_free(engine);
    empmix_engine_free(NULL);
    empmix_engine_string_free(NULL);
    empmix_engine_request_free(NULL);
    empmix_engine_persist_op_free(NULL);
}

int main(void) {
    const char *conf = env_or("EMPMIX_CONFERENCE", "conf-engine-c");
    CHECK(strcmp(empmix_engine_version(), EMPMIX_ENGINE_VERSION) == 0);
    seed_chain(conf);
    char persist_conf[128];
    snprintf(persist_conf, sizeof persist_conf, "%s-persist", conf);
    restart_from_storage(persist_conf, 40);
    bad_input();
    printf("ENGINE_C_OK\n");
    return 0;
}
