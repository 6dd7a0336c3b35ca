/* Every kind of bad input returns an error code; nothing crashes. Needs no server. */
#include <string.h>
#include "check.h"

int main(void) {
    /* NULLs everywhere. */
    EmpmixClient *client = NULL;
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_create(NULL, &client));
    EmpmixConfigBuilder *config = empmix_config_new();
    CHECK(config != NULL);
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_create(config, &client)); /* no key, no endpoint */
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_create(config, NULL));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_config_set_endpoint(NULL, "http://127.0.0.1:9"));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_config_set_flush_at(NULL, 1));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_config_set_ingest_key(config, NULL));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_config_set_app(config, NULL, "1.0", NULL));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_config_set_locale(config, "bad\xC3\x28utf8"));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_config_set_os(config, "iOS", "\xFF"));
    OK(empmix_config_set_os(config, "iOS", NULL));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_track(NULL, "x", NULL));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_flush(NULL, 10));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_stats(NULL, NULL));
    empmix_client_free(NULL);
    empmix_string_free(NULL);
    empmix_config_free(NULL);

    /* Invalid configuration. */
    OK(empmix_config_set_ingest_key(config, "k"));
    OK(empmix_config_set_endpoint(config, "not a url"));
    EXPECT(EMPMIX_ERR_INVALID_CONFIG, empmix_client_create(config, &client));
    CHECK(client == NULL);
    OK(empmix_config_set_endpoint(config, "http://127.0.0.1:9"));
    OK(empmix_config_set_flush_at(config, 100000));
    EXPECT(EMPMIX_ERR_INVALID_CONFIG, empmix_client_create(config, &client));
    char detail[8];
    size_t needed = empmix_last_error_message(detail, sizeof detail);
    CHECK(needed > sizeof detail && strlen(detail) == sizeof detail - 1); /* truncated, terminated */
    CHECK(empmix_last_error_message(NULL, 0) == needed);
    OK(empmix_config_set_flush_at(config, 0));
    OK(empmix_config_set_data_dir(config, "/proc/empmix-cannot-create-this"));
    EXPECT(EMPMIX_ERR_STORAGE, empmix_client_create(config, &client));
    OK(empmix_config_set_data_dir(config, NULL));
    empmix_config_free(config);

    /* The deprecated fixed-struct entry point still works for this release. */
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_new(NULL, &client));
    EmpmixConfig old;
    empmix_config_init(&old);
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_new(&old, &client)); /* no key, no endpoint */
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_client_new(&old, NULL));
    old.ingest_key = "k";
    old.endpoint = "not a url";
    EXPECT(EMPMIX_ERR_INVALID_CONFIG, empmix_client_new(&old, &client));
    old.endpoint = "http://127.0.0.1:9";
    OK(empmix_client_new(&old, &client));
    CHECK(client != NULL);
    OK(empmix_track(client, "old_abi", NULL));
    EmpmixStats old_stats;
    OK(empmix_stats(client, &old_stats));
    CHECK(old_stats.queued + old_stats.in_flight == 1);
    empmix_client_free(client); /* no server on port 9: freed without draining */

    /* Every code has the core's message. */
    CHECK(strcmp(empmix_result_message(EMPMIX_ERR_OPTED_OUT), "the user opted out of tracking") == 0);
    CHECK(EMPMIX_ERR_OPTED_OUT == 6 && EMPMIX_ERR_NOT_STARTED == 15);
    CHECK(strcmp(empmix_result_message(9999), "unknown result code") == 0);

    client = client_for(NULL);
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_track(client, NULL, NULL));
    EXPECT(EMPMIX_ERR_INVALID_NAME, empmix_track(client, "", NULL));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_track(client, "bad\xC3\x28utf8", NULL));
    EXPECT(EMPMIX_ERR_INVALID_UTF8, empmix_track(client, "ok", "{\"k\":\"\xFF\"}"));
    EXPECT(EMPMIX_ERR_INVALID_JSON, empmix_track(client, "ok", "{not json"));
    EXPECT(EMPMIX_ERR_INVALID_JSON, empmix_track(client, "ok", "[1,2,3]"));
    EXPECT(EMPMIX_ERR_INVALID_JSON, empmix_register(client, "\"just a string\""));
    OK(empmix_track(client, "ok", NULL));
    OK(empmix_track(client, "ok", "{}"));
    EXPECT(EMPMIX_ERR_INVALID_NAME, empmix_identify(client, ""));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_identify(client, NULL));

    char *code = NULL, *url = NULL;
    EXPECT(EMPMIX_ERR_INVALID_URL, empmix_create_share(client, "wechat", "/relative/path", NULL, &code, &url));
    CHECK(code == NULL && url == NULL);
    char sentinel = 0;
    url = &sentinel;
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_create_share(client, "wechat", "https://x.example/", NULL, NULL, &url));
    CHECK(url == NULL); /* "on failure both are set to NULL": the one that can be */
    EXPECT(EMPMIX_ERR_INVALID_URL, empmix_handle_incoming_url(client, "", &url));
    EXPECT(EMPMIX_ERR_NULL_ARGUMENT, empmix_handle_incoming_url(client, "https://x.example/?_s=abc", NULL));

    /* A huge event is refused, not truncated. */
    size_t big = 64 * 1024;
    char *huge = malloc(big + 32);
    CHECK(huge != NULL);
    strcpy(huge, "{\"blob\":\"");
    memset(huge + 9, 'x', big);
    strcpy(huge + 9 + big, "\"}");
    EXPECT(EMPMIX_ERR_TOO_LARGE, empmix_track(client, "huge", huge));
    free(huge);

    /* Opted out: refused with a code, and what was queued is purged. */
    OK(empmix_opt_out(client));
    EXPECT(EMPMIX_ERR_OPTED_OUT, empmix_track(client, "ok", NULL));
    EmpmixStats purged;
    OK(empmix_stats(client, &purged));
    /* A send attempt may hold the two events when the 200 ms window has passed (slow under
       valgrind): then they are in flight, not queued. */
    CHECK(purged.queued == 0 && purged.dropped_opted_out + purged.in_flight == 2);
    OK(empmix_opt_in(client));
    for (int i = 0; i < 3; i++) OK(empmix_track(client, "after_opt_in", NULL));

    /* The server is unreachable: flush times out with a code and keeps the events. Two events
       in flight at the opt-out are dropped when their send fails, not revived by the opt-in;
       that failure may come after the flush's 300 ms (slow under valgrind on a busy machine). */
    EXPECT(EMPMIX_ERR_TIMEOUT, empmix_flush(client, 300));
    EmpmixStats stats;
    WAIT_STATS(client, stats, stats.dropped_opted_out == 2);
    CHECK(stats.dropped_opted_out == 2);
    CHECK(stats.queued + stats.in_flight == 3);

    /* After shutdown the handle still answers, with a code. */
    EXPECT(EMPMIX_ERR_TIMEOUT, empmix_shutdown(client, 300));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_track(client, "late", NULL));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_flush(client, 10));
    /* So do the identity, super property and consent calls: nothing is persisted any more, so
       an opt-out after the shutdown must not look recorded. */
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_opt_out(client));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_opt_in(client));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_reset(client));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_register(client, "{\"plan\":\"pro\"}"));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_register_once(client, "{\"plan\":\"pro\"}"));
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_unregister(client, "plan"));
    EXPECT(EMPMIX_ERR_INVALID_JSON, empmix_register(client, "[1]")); /* arguments are checked first */
    char *clean = NULL;
    EXPECT(EMPMIX_ERR_SHUT_DOWN, empmix_handle_incoming_url(client, "https://x.example/?_s=abc", &clean));
    CHECK(clean == NULL);
    OK(empmix_stats(client, &stats));
    OK(empmix_shutdown(client, 10)); /* idempotent */
    empmix_client_free(client);

    /* Every code has a message. */
    for (unsigned code = 0; code <= 14; code++) CHECK(strlen(empmix_result_message((EmpmixResult)code)) > 0);
    CHECK(strlen(empmix_result_message((EmpmixResult)9999)) > 0);
    CHECK(strcmp(empmix_version(), EMPMIX_VERSION) == 0);
    printf("BAD_INPUT_OK\n");
    return 0;
}
