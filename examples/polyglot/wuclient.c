/*
 * Weather update client, after the zguide's wuclient.c: subscribes to one zip code's
 * updates ("ZIPCODE TEMPERATURE HUMIDITY") and prints their average temperature. As a
 * topo exec node it takes its endpoints from the environment (socket `updates`) and
 * tells topo it is ready (`ready: notify`) once it has subscribed and connected.
 *
 *   wuclient [ZIPCODE [COUNT]]
 *
 * Takes COUNT updates of ZIPCODE (default 10001, 100 updates; ZIPCODE "" takes every
 * update), or fewer if an "END" message comes first, then prints the first update it got,
 * how many and their average, and exits 0. Run by hand, outside topo, it connects to
 * tcp://localhost:5556 as the zguide's does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "topo_exec.h"

static int failed = 0;

static void bind_one(const char *endpoint, void *socket)
{
    if (zmq_bind(socket, endpoint) != 0) {
        fprintf(stderr, "wuclient: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        failed = 1;
    }
}

static void connect_one(const char *endpoint, void *socket)
{
    if (zmq_connect(socket, endpoint) != 0) {
        fprintf(stderr, "wuclient: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        failed = 1;
    }
}

int main(int argc, char *argv[])
{
    const char *zipcode = argc > 1 ? argv[1] : "10001";
    long count = argc > 2 ? atol(argv[2]) : 100;

    void *context = zmq_ctx_new();
    void *subscriber = zmq_socket(context, ZMQ_SUB);
    /* Subscribed before connecting: the subscriptions travel with the connection, the
     * zip code's first, so a publisher that waits for a subscription (as topo's Python
     * nodes do) sees the one that matters. "" takes everything, "END" included. */
    char filter[32];
    snprintf(filter, sizeof filter, "%s%s", zipcode, *zipcode ? " " : "");
    zmq_setsockopt(subscriber, ZMQ_SUBSCRIBE, filter, strlen(filter));
    if (*zipcode)
        zmq_setsockopt(subscriber, ZMQ_SUBSCRIBE, "END", 3);
    int binds = topo_endpoints("UPDATES", "BIND", bind_one, subscriber);
    int connects = topo_endpoints("UPDATES", "CONNECT", connect_one, subscriber);
    if (binds < 0 || connects < 0) {
        fprintf(stderr, "wuclient: an endpoint is too long\n");
        return 2;
    }
    if (binds + connects == 0)
        connect_one("tcp://localhost:5556", subscriber); /* not run by topo: the zguide's */
    if (failed)
        return 1;
    if (topo_notify("READY=1") != 0)
        perror("wuclient: sd_notify");

    long got = 0, total = 0;
    char first[64] = "";
    while (got < count) {
        char update[64];
        int size = zmq_recv(subscriber, update, sizeof update - 1, 0);
        if (size < 0) {
            fprintf(stderr, "wuclient: recv: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        if (size > (int)sizeof update - 1)
            size = (int)sizeof update - 1; /* truncated: longer than any update */
        update[size] = '\0';
        if (strcmp(update, "END") == 0)
            break;
        int zip, temperature, humidity;
        if (sscanf(update, "%d %d %d", &zip, &temperature, &humidity) != 3) {
            fprintf(stderr, "wuclient: not an update: %s\n", update);
            continue;
        }
        if (got == 0)
            snprintf(first, sizeof first, "%s", update);
        got++;
        total += temperature;
    }
    printf("first update: %s\n", first);
    printf("%ld updates for zip code '%s': average temperature %.1fF\n", got, zipcode,
           got ? (double)total / (double)got : 0.0);
    zmq_close(subscriber);
    zmq_ctx_destroy(context);
    return 0;
}
