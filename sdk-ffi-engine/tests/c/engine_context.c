/* Three events through an engine configured by driver.h (EMPMIX_SHARED_CONTEXT says whether a
 * request sends their context once, as the batch's, or in each event): prints the body of the
 * request the flush makes, for the Rust harness to read. */
#include "driver.h"

int main(void) {
    EmpmixEngine *engine = engine_for(NULL);
    for (int i = 0; i < 3; i++) OK(empmix_engine_track(engine, now_ms(), "context_check", "{\"i\":1}"));
    uint64_t ticket = 0;
    OK(empmix_engine_flush(engine, &ticket));
    EmpmixRequest *req = NULL;
    OK(empmix_engine_poll_transmit(engine, now_ms(), &req));
    CHECK(req != NULL && req->events == 3);
    fwrite(req->body, 1, req->body_len, stdout);
    empmix_engine_request_free(req);
    empmix_engine_free(engine);
    return 0;
}
