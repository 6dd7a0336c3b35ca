/* The smallest useful EmpMix C program: track a page view and a custom event, then flush.
 * Build and run: see README.md beside this file. */
#include <stdio.h>
#include <stdlib.h>
#include "empmix.h"

int main(void) {
    const char *key = getenv("EMPMIX_INGEST_KEY");
    const char *endpoint = getenv("EMPMIX_ENDPOINT");
    EmpmixConfigBuilder *config = empmix_config_new();
    empmix_config_set_ingest_key(config, key ? key : "");
    empmix_config_set_endpoint(config, endpoint ? endpoint : "http://127.0.0.1:8000");
    empmix_config_set_data_dir(config, "./empmix-c-data"); /* unsent events survive a crash */
    empmix_config_set_app(config, "track-example", "1.0.0", "1");

    EmpmixClient *client = NULL;
    EmpmixResult rc = empmix_client_create(config, &client);
    empmix_config_free(config);
    if (rc != EMPMIX_OK) {
        char detail[256];
        empmix_last_error_message(detail, sizeof detail);
        fprintf(stderr, "empmix_client_create: %s (%s)\n", empmix_result_message(rc), detail);
        return 1;
    }
    empmix_register(client, "{\"conference_id\":\"demo-conf\"}");
    empmix_page_view(client, "app://conf/demo-conf", "demo-conf", NULL);
    empmix_track(client, "ticket_viewed", "{\"tier\":\"vip\"}");

    char *code = NULL, *url = NULL;
    if (empmix_create_share(client, "sms", "https://conf.example/c/demo-conf", "demo-conf", &code, &url) == EMPMIX_OK) {
        printf("share link: %s\n", url);
        empmix_string_free(code);
        empmix_string_free(url);
    }
    rc = empmix_flush(client, 5000);
    printf("flush: %s\n", empmix_result_message(rc));
    empmix_shutdown(client, 5000);
    empmix_client_free(client);
    return rc == EMPMIX_OK ? 0 : 1;
}
