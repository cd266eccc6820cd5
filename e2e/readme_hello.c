/*
 * The program the README's plugin example packs (`./hello`, mapped to /usr/bin/hello by the
 * starter app.toml): `hello --port 8080` answers HTTP/1.0 with GET / ("hello"), GET /status and
 * POST /reload (echoing the body), and logs each request on stdout. Built static with musl-gcc
 * by e2e/readme_test.ts.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void answer(int c, const char *status, const char *body) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   status, strlen(body));
  if (write(c, head, n) < 0 || write(c, body, strlen(body)) < 0) perror("hello: write");
}

int main(int argc, char **argv) {
  int port = 8080;
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 16) != 0) {
    perror("hello: listen");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("hello: listening on port %d\n", port);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
      n += (size_t)r;
      buf[n] = 0;
      char *end = strstr(buf, "\r\n\r\n");
      if (end == NULL) continue;
      char *length = strcasestr(buf, "content-length:");
      size_t want = length != NULL && length < end ? (size_t)atoi(length + 15) : 0;
      if (n >= (size_t)(end - buf) + 4 + want) break;
    }
    buf[n] = 0;
    char method[16] = "", path[256] = "";
    sscanf(buf, "%15s %255s", method, path);
    char *body = strstr(buf, "\r\n\r\n");
    body = body != NULL ? body + 4 : "";
    printf("hello: %s %s\n", method, path);
    char out[4200];
    if (strcmp(method, "POST") == 0 && strcmp(path, "/reload") == 0) {
      snprintf(out, sizeof out, "reloaded with %s\n", body);
      answer(c, "200 OK", out);
    } else if (strcmp(path, "/status") == 0) {
      answer(c, "200 OK", "hello: ok\n");
    } else if (strcmp(path, "/") == 0) {
      answer(c, "200 OK", "hello\n");
    } else {
      answer(c, "404 Not Found", "not found\n");
    }
    close(c);
  }
}
