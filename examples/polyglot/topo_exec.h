/*
 * topo_exec.h: what a C program run as a topo exec node needs from topo, in a few
 * lines of its own (no library besides libc):
 *
 *   topo_endpoints(SOCKET, "BIND" or "CONNECT")  the endpoints of one socket, from the
 *       plain variable TOPO_SOCKET_<SOCKET>_BIND or _CONNECT (space-separated);
 *   topo_notify("READY=1")  systemd's sd_notify protocol: one datagram to the unix
 *       socket named by NOTIFY_SOCKET (a leading '@' names an abstract socket); nothing
 *       when the variable is not set (the node did not say `ready: notify`);
 *   topo_wait_go()  waits for topo's go: one byte on the descriptor named by TOPO_GO_FD,
 *       written once every receiver linked to the program's sending sockets has
 *       connected. Returns 1 on the go (or when the variable is not set), 0 when the run
 *       is stopping (end of file, no byte).
 *
 * Header-only so that each example is one `gcc prog.c -lzmq`; copy it into your own
 * program, it is short on purpose.
 */
#ifndef TOPO_EXEC_H
#define TOPO_EXEC_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Calls fn(endpoint, arg) for each endpoint of socket `name` (its variable's name part:
 * upper case, '-' written '_') in direction `dir` ("BIND" or "CONNECT"). Returns how many
 * endpoints there were, or -1 if one is too long for the buffer. */
static inline int topo_endpoints(const char *name, const char *dir, void (*fn)(const char *, void *), void *arg)
{
    char var[256], endpoint[1024];
    snprintf(var, sizeof var, "TOPO_SOCKET_%s_%s", name, dir);
    const char *p = getenv(var);
    int n = 0;
    while (p && *p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        if (len >= sizeof endpoint)
            return -1;
        memcpy(endpoint, p, len);
        endpoint[len] = '\0';
        fn(endpoint, arg);
        n++;
        p += len;
    }
    return n;
}

/* Sends `state` ("READY=1", "STATUS=...", "STOPPING=1") to NOTIFY_SOCKET, if set.
 * Returns 0 on success or when there is nowhere to send, -1 on an error (errno set). */
static inline int topo_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0'; /* abstract namespace: no file, the name is its bytes */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t sent = sendto(fd, state, strlen(state), 0, (struct sockaddr *)&addr, size);
    int saved = errno;
    close(fd);
    errno = saved;
    return sent < 0 ? -1 : 0;
}

/* Waits for topo's go on TOPO_GO_FD: 1 once it came (or if there is none to wait for),
 * 0 if the run is stopping before it (end of file), -1 on an error. */
static inline int topo_wait_go(void)
{
    const char *var = getenv("TOPO_GO_FD");
    if (!var || !*var)
        return 1;
    char *end;
    long fd = strtol(var, &end, 10);
    if (*end || fd < 0 || fd > 65535) {
        errno = EBADF;
        return -1;
    }
    char byte;
    ssize_t n;
    do
        n = read((int)fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    return n == 1 ? 1 : 0;
}

#endif
