/*
 * Weather update server, after the zguide's wuserver.c: publishes "ZIPCODE TEMPERATURE
 * HUMIDITY" updates on a PUB socket. As a topo exec node it takes its endpoints from the
 * environment (socket `updates`), tells topo it is ready (`ready: notify`), and waits for
 * topo's go before its first update so that no subscriber misses it.
 *
 *   wuserver [COUNT [ZIPCODES]]
 *
 * COUNT updates (default: forever), then one "END" message, then exit 0. Zip codes are
 * drawn from 10000 to 10000 + ZIPCODES - 1 (default 100: a subscriber to one of them gets
 * about one update in a hundred; the zguide draws from 100000). Run by hand, outside
 * topo, it binds tcp port 5556 (all interfaces) as the zguide's does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "topo_exec.h"

static int failed = 0;

static void bind_one(const char *endpoint, void *socket)
{
    if (zmq_bind(socket, endpoint) != 0) {
        fprintf(stderr, "wuserver: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        failed = 1;
    }
}

static void connect_one(const char *endpoint, void *socket)
{
    if (zmq_connect(socket, endpoint) != 0) {
        fprintf(stderr, "wuserver: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        failed = 1;
    }
}

int main(int argc, char *argv[])
{
    long count = argc > 1 ? atol(argv[1]) : -1;
    int zipcodes = argc > 2 ? atoi(argv[2]) : 100;
    if (zipcodes < 1)
        zipcodes = 1;

    void *context = zmq_ctx_new();
    void *publisher = zmq_socket(context, ZMQ_PUB);
    int linger = 5000; /* at exit, up to 5 s to hand the last updates over */
    zmq_setsockopt(publisher, ZMQ_LINGER, &linger, sizeof linger);
    int binds = topo_endpoints("UPDATES", "BIND", bind_one, publisher);
    int connects = topo_endpoints("UPDATES", "CONNECT", connect_one, publisher);
    if (binds < 0 || connects < 0) {
        fprintf(stderr, "wuserver: an endpoint is too long\n");
        return 2;
    }
    if (binds + connects == 0)
        bind_one("tcp://*:5556", publisher); /* not run by topo: the zguide's endpoint */
    if (failed)
        return 1;

    if (topo_notify("READY=1\nSTATUS=waiting for topo's go") != 0)
        perror("wuserver: sd_notify");
    int go = topo_wait_go();
    if (go <= 0) {
        if (go < 0)
            perror("wuserver: TOPO_GO_FD");
        zmq_close(publisher);
        zmq_ctx_destroy(context);
        return go < 0 ? 1 : 0;
    }

    /* libzmq takes in what arrived for a socket (the subscriptions) only now and then
     * during sends: make it look now, so the first update meets every subscription. */
    int events;
    size_t events_size = sizeof events;
    zmq_getsockopt(publisher, ZMQ_EVENTS, &events, &events_size);
    topo_notify("STATUS=publishing");
    srandom((unsigned)time(NULL));
    for (long sent = 0; count < 0 || sent < count; sent++) {
        char update[64];
        int zipcode = 10000 + (int)(random() % zipcodes);
        int temperature = (int)(random() % 215) - 80;
        int humidity = (int)(random() % 50) + 10;
        snprintf(update, sizeof update, "%05d %d %d", zipcode, temperature, humidity);
        if (sent == 0) {
            printf("first update: %s\n", update);
            fflush(stdout);
        }
        if (zmq_send(publisher, update, strlen(update), 0) < 0) {
            fprintf(stderr, "wuserver: send: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    zmq_send(publisher, "END", 3, 0);
    printf("sent %ld updates\n", count);
    zmq_close(publisher);
    zmq_ctx_destroy(context);
    return 0;
}
