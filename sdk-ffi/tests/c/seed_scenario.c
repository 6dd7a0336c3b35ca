/* The seed scenario through the C ABI: A views and shares, B opens A's link and shares, C opens
 * B's link, identifies and registers, checks in and chats, all without super properties (each
 * share names its conference). Prints the share codes; the Rust harness then checks the
 * server's daily summary and share tree. */
#include <string.h>
#include "check.h"

int main(void) {
    const char *conf = env_or("EMPMIX_CONFERENCE", "conf-c");
    char target[256];
    snprintf(target, sizeof target, "https://m-app.example/conf/%s", conf);
    EmpmixClient *a = client_for(NULL), *b = client_for(NULL), *c = client_for(NULL);
    OK(empmix_page_view(a, target, conf, NULL));
    char *code_a = NULL, *url_a = NULL;
    OK(empmix_create_share(a, "wechat", target, conf, &code_a, &url_a));
    CHECK(strstr(url_a, "_s=") != NULL && strstr(url_a, code_a) != NULL);

    char *clean = NULL;
    OK(empmix_handle_incoming_url(b, url_a, &clean));
    CHECK(strcmp(clean, target) == 0);
    OK(empmix_page_view(b, clean, conf, NULL));
    char *code_b = NULL, *url_b = NULL;
    OK(empmix_create_share(b, "link", clean, conf, &code_b, &url_b));
    empmix_string_free(clean);

    char *clean_c = NULL;
    OK(empmix_handle_incoming_url(c, url_b, &clean_c));
    empmix_string_free(clean_c);
    OK(empmix_page_view(c, target, conf, "https://chat.example/"));
    OK(empmix_identify(c, "user-c"));
    OK(empmix_registration(c, conf, "form-1"));
    OK(empmix_checkin(c, conf, "qr"));
    OK(empmix_ai_chat(c, conf, 42));
    OK(empmix_track(c, "custom_event", "{\"nested\":{\"ok\":[1,2,3]},\"emoji\":\"\xF0\x9F\x8E\x89\"}"));

    OK(empmix_flush(a, 10000));
    OK(empmix_flush(b, 10000));
    OK(empmix_flush(c, 10000));
    EmpmixStats stats;
    OK(empmix_stats(c, &stats));
    CHECK(stats.delivered == 7); /* share_open, page_view, identify, registration, checkin, ai_chat, custom */
    CHECK(stats.queued == 0);

    printf("CODE_A %s\nCODE_B %s\n", code_a, code_b);
    empmix_string_free(code_a);
    empmix_string_free(url_a);
    empmix_string_free(code_b);
    empmix_string_free(url_b);
    OK(empmix_shutdown(a, 5000));
    empmix_client_free(a);
    empmix_client_free(b); /* free without shutdown: b was flushed, nothing is lost */
    empmix_client_free(c);
    return 0;
}
