/* Many threads tracking on one shared client at once. */
#include <pthread.h>
#include "check.h"

#define THREADS 8
#define PER_THREAD 250

static EmpmixClient *shared;

static void *worker(void *arg) {
    const char *conf = env_or("EMPMIX_CONFERENCE", "conf-threads");
    long t = (long)arg;
    char url[128];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(url, sizeof url, "https://m-app.example/t%ld/%d", t, i);
        OK(empmix_page_view(shared, url, conf, NULL));
    }
    return NULL;
}

int main(void) {
    shared = client_for(NULL);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++) CHECK(pthread_create(&threads[t], NULL, worker, (void *)t) == 0);
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(threads[t], NULL) == 0);
    OK(empmix_flush(shared, 20000));
    EmpmixStats stats;
    OK(empmix_stats(shared, &stats));
    CHECK(stats.delivered == THREADS * PER_THREAD);
    OK(empmix_shutdown(shared, 5000));
    empmix_client_free(shared);
    printf("TRACKED %d\n", THREADS * PER_THREAD);
    return 0;
}
