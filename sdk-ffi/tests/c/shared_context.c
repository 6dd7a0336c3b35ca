/* Three events through a client configured by check.h (EMPMIX_SHARED_CONTEXT says whether a
 * request sends their context once, as the batch's, or in each event); the Rust harness reads
 * the request bodies. */
#include "check.h"

int main(void) {
    EmpmixClient *client = client_for(NULL);
    for (int i = 0; i < 3; i++) OK(empmix_track(client, "context_check", "{\"i\":1}"));
    OK(empmix_flush(client, 10000));
    OK(empmix_shutdown(client, 5000));
    empmix_client_free(client);
    printf("SHARED_CONTEXT_OK\n");
    return 0;
}
