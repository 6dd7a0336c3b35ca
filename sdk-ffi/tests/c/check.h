/* What the libempmix test programs share: the assertions (expect.h) and a client. */
#ifndef EMPMIX_TEST_CHECK_H
#define EMPMIX_TEST_CHECK_H
#include <time.h>
#include "empmix.h"
#define EXPECT_RESULT_MESSAGE empmix_result_message
#define EXPECT_LAST_ERROR empmix_last_error_message
#include "expect.h"

/* Reads the client's counters into `s` every 10 ms until `cond` (over `s`) holds, for at most
   10 s: for what the client's background thread does in its own time. */
#define WAIT_STATS(client, s, cond)                                                     \
    do {                                                                               \
        for (int waited_ = 0;; waited_ += 10) {                                        \
            OK(empmix_stats((client), &(s)));                                          \
            if ((cond) || waited_ >= 10000) break;                                     \
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);          \
        }                                                                              \
    } while (0)

/* A client through the configuration ABI (empmix_config_new, setters, empmix_client_create),
   with the device context a mobile host passes; EMPMIX_SHARED_CONTEXT=0 gives every event its
   own context. */
static EmpmixClient *client_for(const char *data_dir) {
    EmpmixConfigBuilder *config = empmix_config_new();
    CHECK(config != NULL);
    OK(empmix_config_set_ingest_key(config, env_or("EMPMIX_INGEST_KEY", "missing-key")));
    OK(empmix_config_set_endpoint(config, env_or("EMPMIX_ENDPOINT", "http://127.0.0.1:9")));
    OK(empmix_config_set_data_dir(config, data_dir));
    OK(empmix_config_set_flush_interval_ms(config, 200));
    OK(empmix_config_set_request_timeout_ms(config, 2000));
    OK(empmix_config_set_app(config, "EmpMix C tests", "1.2.3", "45"));
    OK(empmix_config_set_os(config, "iOS", "17.5"));
    OK(empmix_config_set_device_model(config, "iPhone15,2"));
    OK(empmix_config_set_locale(config, "de-DE"));
    OK(empmix_config_set_screen_size(config, 390, 844));
    OK(empmix_config_set_time_zone(config, "Europe/Berlin"));
    OK(empmix_config_set_shared_context(config, env_on("EMPMIX_SHARED_CONTEXT")));
    EmpmixClient *client = NULL;
    OK(empmix_client_create(config, &client));
    empmix_config_free(config);
    CHECK(client != NULL);
    return client;
}
#endif
