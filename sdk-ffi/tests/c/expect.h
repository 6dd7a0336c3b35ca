/* Assertion helpers shared by the C test programs of both libraries (libempmix and
 * libempmix_engine). The includer names its library's message functions first:
 *   #define EXPECT_RESULT_MESSAGE empmix_result_message
 *   #define EXPECT_LAST_ERROR empmix_last_error_message */
#ifndef EMPMIX_TEST_EXPECT_H
#define EMPMIX_TEST_EXPECT_H
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* Expects `call` to return `want`; prints the library's messages when it does not. */
#define EXPECT(want, call)                                                             \
    do {                                                                               \
        EmpmixResult got_ = (call);                                                    \
        if (got_ != (want)) {                                                          \
            char detail_[256];                                                         \
            EXPECT_LAST_ERROR(detail_, sizeof detail_);                                \
            fprintf(stderr, "%s:%d: %s returned %u (%s: %s), wanted %u\n", __FILE__,   \
                    __LINE__, #call, (unsigned)got_, EXPECT_RESULT_MESSAGE(got_),      \
                    detail_, (unsigned)(want));                                        \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define OK(call) EXPECT(EMPMIX_OK, call)

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

/* Whether the switch `name` is on: anything but "0", on when unset. */
static int env_on(const char *name) {
    const char *v = getenv(name);
    return !v || v[0] != '0' || v[1] != 0;
}
#endif
