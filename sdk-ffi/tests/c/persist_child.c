/* Persistence across SIGKILL. Mode "track N": track N page views with a persistence directory
 * against an unreachable server, print READY, and wait to be killed. Mode "send": open the same
 * directory against the real server and flush everything it finds. */
#include <string.h>
#include <unistd.h>
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc >= 3);
    const char *dir = argv[2];
    const char *conf = env_or("EMPMIX_CONFERENCE", "conf-persist");
    EmpmixClient *client = client_for(dir);
    if (strcmp(argv[1], "track") == 0) {
        CHECK(argc == 4);
        int n = atoi(argv[3]);
        char url[128];
        for (int i = 0; i < n; i++) {
            snprintf(url, sizeof url, "https://m-app.example/persist/%d", i);
            OK(empmix_page_view(client, url, conf, NULL));
        }
        printf("READY\n");
        fflush(stdout);
        for (;;) pause();
    }
    OK(empmix_flush(client, 20000));
    EmpmixStats stats;
    OK(empmix_stats(client, &stats));
    printf("SENT %llu\n", (unsigned long long)stats.delivered);
    OK(empmix_shutdown(client, 5000));
    empmix_client_free(client);
    return 0;
}
