/* A tiny blocking HTTP/1.1 client for the engine's test programs: one POST per connection
 * (Connection: close), plain http:// only. What a mobile app's URLSession or OkHttp does, in
 * as few lines as a test can afford. */
#ifndef EMPMIX_TEST_HTTP_H
#define EMPMIX_TEST_HTTP_H
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    int status;           /* 0: no answer (connection refused, reset, timeout) */
    char retry_after[64]; /* the Retry-After header's value, "" when absent */
    char *body;           /* malloc'd, NUL-terminated; free with free() */
    size_t body_len;
} HttpAnswer;

/* Writes all of `data`; false on error. */
static inline int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

/* POSTs `body` to `url` (http://host:port/path) with `header_count` name/value pairs. */
static inline HttpAnswer http_post(const char *url, const char *const *names, const char *const *values,
                            size_t header_count, const uint8_t *body, size_t body_len) {
    HttpAnswer answer = {0, "", NULL, 0};
    char host[256], port[16] = "80";
    const char *rest = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (!rest) return answer;
    const char *path = strchr(rest, '/');
    size_t authority = path ? (size_t)(path - rest) : strlen(rest);
    if (authority == 0 || authority >= sizeof host) return answer;
    memcpy(host, rest, authority);
    host[authority] = 0;
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *addrs = NULL;
    if (getaddrinfo(host, port, &hints, &addrs) != 0) return answer;
    int fd = socket(addrs->ai_family, addrs->ai_socktype, addrs->ai_protocol);
    struct timeval timeout = {.tv_sec = 5};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    }
    int connected = fd >= 0 && connect(fd, addrs->ai_addr, addrs->ai_addrlen) == 0;
    freeaddrinfo(addrs);
    if (!connected) {
        if (fd >= 0) close(fd);
        return answer;
    }
    char head[2048];
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nContent-Length: %zu\r\n",
                     path ? path : "/", host, port, body_len);
    for (size_t i = 0; i < header_count && n > 0 && (size_t)n < sizeof head; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s: %s\r\n", names[i], values[i]);
    if (n <= 0 || (size_t)n + 2 >= sizeof head) {
        close(fd);
        return answer;
    }
    memcpy(head + n, "\r\n", 3);
    if (!write_all(fd, head, (size_t)n + 2) || !write_all(fd, body, body_len)) {
        close(fd);
        return answer;
    }
    size_t cap = 4096, len = 0;
    char *raw = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) raw = realloc(raw, cap *= 2);
        ssize_t got = recv(fd, raw + len, cap - len - 1, 0);
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(fd);
    raw[len] = 0;
    char *end = strstr(raw, "\r\n\r\n");
    int status = 0;
    if (!end || sscanf(raw, "HTTP/1.%*d %d", &status) != 1) {
        free(raw);
        return answer; /* no complete answer: a failure, retried */
    }
    *end = 0;
    for (char *line = strstr(raw, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Retry-After:", 12) == 0) {
            const char *v = line + 14;
            while (*v == ' ') v++;
            size_t vlen = strcspn(v, "\r");
            if (vlen >= sizeof answer.retry_after) vlen = sizeof answer.retry_after - 1;
            memcpy(answer.retry_after, v, vlen);
            answer.retry_after[vlen] = 0;
        }
    }
    answer.status = status;
    answer.body_len = len - (size_t)(end + 4 - raw);
    answer.body = malloc(answer.body_len + 1);
    memcpy(answer.body, end + 4, answer.body_len);
    answer.body[answer.body_len] = 0;
    free(raw);
    return answer;
}
#endif
