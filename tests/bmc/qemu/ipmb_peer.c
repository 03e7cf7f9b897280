/*
 * IPMB peer: a management controller on an I2C bus, for testing IPMB
 * endpoints (the BMC's /dev/ipmb-N) through a real I2C controller model.
 *
 * Copyright (C) 2026 The ipmb developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Usage: -device ipmb-peer,bus=<i2c bus>,address=<7-bit address>
 * The peer's IPMB (8-bit) address, own8 below, is address << 1.
 *
 * Frames are IPMB frames on the wire, address byte included:
 *   [rsSA, netFn << 2 | rsLUN, cs1, rqSA, rqSeq << 2 | rqLUN, cmd, data...,
 *    cs2]
 * cs1 makes [rsSA, netFn/LUN, cs1] sum to 0 (mod 256), cs2 makes
 * [rqSA .. cs2] sum to 0.
 *
 * Receiving: the peer takes every master write addressed to it (the address
 * byte is own8).  On STOP, a frame that is a valid IPMB request to it (at
 * least 7 bytes, cs1 and cs2 correct, netFn even) is answered; anything else
 * (bad checksums, a response, a short frame, reads) is ignored.
 *
 * Answering: the peer masters the bus itself (i2c_bus_master(), then
 * i2c_start_send_async()/i2c_send_async(), one byte per ACK from the target)
 * and writes the response to the 7-bit address rqSA >> 1:
 *   [rqSA, (netFn | 1) << 2 | rqLUN, cs1, own8, rqSeq << 2 | rsLUN, cmd, cc,
 *    data..., cs2]
 * - netFn 0x06 (App), cmd 0x01 Get Device ID: cc 0x00 and the 15 bytes
 *   42 01 02 10 02 21 5a 1a 00 34 12 00 00 00 00 (device id 0x42, rev 1,
 *   firmware 2.10, IPMI 2.0, support 0x21, manufacturer 0x001a5a, product
 *   0x1234, aux 0).
 * - netFn 0x30 (OEM), cmd 0x01 echo: cc 0x00 and the request's data.
 * - netFn 0x30, cmd 0x02 burst: the data must be exactly 6 bytes
 *   [dest8, count_lo, count_hi, kind, dlen_lo, dlen_hi] (else cc 0xc7);
 *   kind > 2 or dlen > 300 gives cc 0xcc.  Otherwise the peer answers cc 0x00
 *   and then sends `count` frames to dest8 >> 1, one write transfer each,
 *   frame i (from 0):
 *     [dest8, 0x30 << 2, cs1, own8, (i & 0x3f) << 2, 0x03,
 *      d_0 .. d_dlen-1, cs2]
 *   with d_j = (i + j) & 0xff, except d_0 = i & 0xff and d_1 = i >> 8 when
 *   dlen >= 2.  kind 0: valid frames; 1: cs1 ^ 0x01; 2: cs2 ^ 0x01.  A frame
 *   is dlen + 7 bytes on the wire.
 * - Any other request: cc 0xc1 and no data.
 *
 * Responses and burst frames go through a bounded queue of IPMB_PEER_QUEUE_LEN
 * (16) jobs; a burst is one job that generates its frames one at a time.
 * Requests that arrive while the peer is still sending are answered in order
 * after what is queued; a request that finds the queue full is dropped, and
 * so is one longer than IPMB_PEER_MAX_REQ (1024) bytes.  A frame whose
 * destination does not answer is lost, as on a real bus.  The peer releases
 * the bus between frames, so that other masters get a turn.
 *
 * Trace events ipmb_peer_* show the traffic and why a frame was ignored;
 * -d guest_errors reports dropped requests, repeated starts and reads.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "hw/i2c/i2c.h"
#include "migration/vmstate.h"
#include "trace.h"

#define TYPE_IPMB_PEER "ipmb-peer"
OBJECT_DECLARE_SIMPLE_TYPE(IPMBPeerState, IPMB_PEER)

/* Longest request accepted, address byte included; a response is 1 more. */
#define IPMB_PEER_MAX_REQ       1024
#define IPMB_PEER_MAX_FRAME     (IPMB_PEER_MAX_REQ + 1)
#define IPMB_PEER_QUEUE_LEN     16
#define IPMB_PEER_MIN_FRAME     7

#define IPMB_NETFN_APP          0x06
#define IPMB_NETFN_OEM          0x30
#define IPMB_CMD_GET_DEVICE_ID  0x01
#define IPMB_CMD_ECHO           0x01
#define IPMB_CMD_BURST          0x02
#define IPMB_CMD_BURST_FRAME    0x03
#define IPMB_BURST_MAX_DLEN     300

#define IPMB_CC_OK              0x00
#define IPMB_CC_INVALID_CMD     0xc1
#define IPMB_CC_BAD_LENGTH      0xc7
#define IPMB_CC_BAD_DATA        0xcc

static const uint8_t ipmb_peer_device_id[] = {
    0x42, 0x01, 0x02, 0x10, 0x02, 0x21, 0x5a, 0x1a,
    0x00, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00,
};

typedef enum IPMBPeerJobKind {
    IPMB_PEER_JOB_FRAME,        /* one frame, stored in frame[] */
    IPMB_PEER_JOB_BURST,        /* burst frames, generated when sent */
} IPMBPeerJobKind;

typedef struct IPMBPeerJob {
    IPMBPeerJobKind kind;
    /* IPMB_PEER_JOB_FRAME */
    uint16_t len;
    uint8_t frame[IPMB_PEER_MAX_FRAME];
    /* IPMB_PEER_JOB_BURST */
    uint8_t dest;
    uint8_t corrupt;            /* 0: none, 1: cs1, 2: cs2 */
    uint16_t dlen;
    uint32_t next;
    uint32_t count;
} IPMBPeerJob;

typedef enum IPMBPeerTxState {
    IPMB_PEER_TX_IDLE,          /* not asking for the bus */
    IPMB_PEER_TX_WAIT_BUS,      /* in the bus's queue of pending masters */
    IPMB_PEER_TX_SEND,          /* owns the bus, waiting for an ACK */
} IPMBPeerTxState;

struct IPMBPeerState {
    I2CSlave parent_obj;

    I2CBus *bus;
    QEMUBH *bh;                 /* runs the master side, once per ACK */
    QEMUBH *kick_bh;            /* hands the bus out after our STOP */

    /* Receiving: rx[0] is our own address, as on the wire. */
    bool rx_active;
    bool rx_overrun;
    unsigned int rx_len;
    uint8_t rx[IPMB_PEER_MAX_REQ];

    /* Outgoing jobs: a ring of IPMB_PEER_QUEUE_LEN. */
    unsigned int q_head;
    unsigned int q_count;
    IPMBPeerJob queue[IPMB_PEER_QUEUE_LEN];

    /* The frame on the wire. */
    IPMBPeerTxState tx_state;
    unsigned int tx_len;
    unsigned int tx_pos;
    uint8_t tx[IPMB_PEER_MAX_FRAME];
};

static uint8_t ipmb_peer_own8(IPMBPeerState *s)
{
    return I2C_SLAVE(s)->address << 1;
}

/* The checksum byte that makes buf[0..len-1] plus itself sum to 0. */
static uint8_t ipmb_peer_csum(const uint8_t *buf, unsigned int len)
{
    uint8_t sum = 0;

    while (len--) {
        sum += *buf++;
    }
    return -sum;
}

static IPMBPeerJob *ipmb_peer_queue_head(IPMBPeerState *s)
{
    return s->q_count ? &s->queue[s->q_head] : NULL;
}

static void ipmb_peer_queue_pop(IPMBPeerState *s)
{
    s->q_head = (s->q_head + 1) % IPMB_PEER_QUEUE_LEN;
    s->q_count--;
}

/* The n-th free slot after the queued jobs; the caller checked there is one. */
static IPMBPeerJob *ipmb_peer_queue_slot(IPMBPeerState *s, unsigned int n)
{
    return &s->queue[(s->q_head + s->q_count + n) % IPMB_PEER_QUEUE_LEN];
}

/* Asks for the bus if there is something to send and we have not yet. */
static void ipmb_peer_want_bus(IPMBPeerState *s)
{
    if (s->tx_state != IPMB_PEER_TX_IDLE || !s->q_count) {
        return;
    }
    s->tx_state = IPMB_PEER_TX_WAIT_BUS;
    i2c_bus_master(s->bus, s->bh);
    /*
     * The controller that ends the current transfer normally hands the bus
     * to the next pending master (aspeed_i2c does, after a STOP); in case it
     * does not, try again once that transfer is over.
     */
    qemu_bh_schedule(s->kick_bh);
}

static void ipmb_peer_kick_bh(void *opaque)
{
    IPMBPeerState *s = opaque;

    /* Does nothing while the bus is busy, so it cannot preempt anyone. */
    i2c_schedule_pending_master(s->bus);
}

/* Generates frame job->next of a burst into tx[]. */
static void ipmb_peer_burst_frame(IPMBPeerState *s, IPMBPeerJob *job)
{
    uint32_t i = job->next;
    uint8_t *f = s->tx;
    unsigned int j;

    f[0] = job->dest;
    f[1] = IPMB_NETFN_OEM << 2;
    f[2] = ipmb_peer_csum(f, 2) ^ (job->corrupt == 1);
    f[3] = ipmb_peer_own8(s);
    f[4] = (i & 0x3f) << 2;
    f[5] = IPMB_CMD_BURST_FRAME;
    for (j = 0; j < job->dlen; j++) {
        f[6 + j] = i + j;
    }
    if (job->dlen >= 2) {
        f[7] = i >> 8;
    }
    f[6 + job->dlen] = ipmb_peer_csum(f + 3, 3 + job->dlen) ^
                       (job->corrupt == 2);
    s->tx_len = job->dlen + IPMB_PEER_MIN_FRAME;
}

/* Moves the next frame to send into tx[]; false if there is none. */
static bool ipmb_peer_load_frame(IPMBPeerState *s)
{
    IPMBPeerJob *job = ipmb_peer_queue_head(s);

    if (!job) {
        return false;
    }
    if (job->kind == IPMB_PEER_JOB_FRAME) {
        memcpy(s->tx, job->frame, job->len);
        s->tx_len = job->len;
        ipmb_peer_queue_pop(s);
    } else {
        ipmb_peer_burst_frame(s, job);
        if (++job->next == job->count) {
            ipmb_peer_queue_pop(s);
        }
    }
    s->tx_pos = 0;
    return true;
}

/* Gives the bus back, asking for it again if more is queued. */
static void ipmb_peer_release(IPMBPeerState *s)
{
    s->tx_state = IPMB_PEER_TX_IDLE;
    if (s->q_count) {
        /* Queue first: the release hands the bus to the next in line. */
        s->tx_state = IPMB_PEER_TX_WAIT_BUS;
        i2c_bus_master(s->bus, s->bh);
    }
    i2c_bus_release(s->bus);
}

/*
 * The master side.  Runs when the bus is handed to us (i2c_bus_master()),
 * then each time the target ACKs a byte (i2c_ack()).
 */
static void ipmb_peer_bh(void *opaque)
{
    IPMBPeerState *s = opaque;
    uint8_t addr = I2C_SLAVE(s)->address;

    switch (s->tx_state) {
    case IPMB_PEER_TX_IDLE:
        return;

    case IPMB_PEER_TX_WAIT_BUS:
        if (!QLIST_EMPTY(&s->bus->current_devs)) {
            /*
             * Another master (the guest's controller) started a transfer
             * after the bus was handed to us: wait for its end.
             */
            i2c_bus_master(s->bus, s->bh);
            i2c_bus_release(s->bus);
            return;
        }
        if (!ipmb_peer_load_frame(s)) {
            ipmb_peer_release(s);
            return;
        }
        trace_ipmb_peer_tx(addr, s->tx[0] >> 1, s->tx_len);
        if (i2c_start_send_async(s->bus, s->tx[0] >> 1)) {
            /* No target at that address: the frame is lost. */
            trace_ipmb_peer_tx_nak(addr, s->tx[0] >> 1, 0);
            ipmb_peer_release(s);
            return;
        }
        s->tx_pos = 1;
        s->tx_state = IPMB_PEER_TX_SEND;
        return;

    case IPMB_PEER_TX_SEND:
        if (s->tx_pos < s->tx_len) {
            if (i2c_send_async(s->bus, s->tx[s->tx_pos]) == 0) {
                s->tx_pos++;
                return;
            }
            /* The target cannot take asynchronous bytes. */
            trace_ipmb_peer_tx_nak(addr, s->tx[0] >> 1, s->tx_pos);
        } else {
            trace_ipmb_peer_tx_done(addr, s->tx[0] >> 1, s->tx_len);
        }
        i2c_end_transfer(s->bus);
        ipmb_peer_release(s);
        return;
    }
}

static void ipmb_peer_drop(IPMBPeerState *s, const char *why)
{
    trace_ipmb_peer_ignored(I2C_SLAVE(s)->address, s->rx_len, why);
    qemu_log_mask(LOG_GUEST_ERROR, "%s: 0x%02x: %u-byte frame dropped: %s\n",
                  TYPE_IPMB_PEER, I2C_SLAVE(s)->address, s->rx_len, why);
}

/* Queues the response to the request in rx[]; false if the queue is full. */
static bool ipmb_peer_respond(IPMBPeerState *s, uint8_t cc,
                              const uint8_t *data, unsigned int len)
{
    const uint8_t *rq = s->rx;
    IPMBPeerJob *job;
    uint8_t *f;

    if (s->q_count == IPMB_PEER_QUEUE_LEN) {
        return false;
    }
    job = ipmb_peer_queue_slot(s, 0);
    f = job->frame;
    f[0] = rq[3];
    f[1] = (((rq[1] >> 2) | 1) << 2) | (rq[4] & 3);
    f[2] = ipmb_peer_csum(f, 2);
    f[3] = ipmb_peer_own8(s);
    f[4] = (rq[4] & ~3) | (rq[1] & 3);
    f[5] = rq[5];
    f[6] = cc;
    if (len) {
        memcpy(f + 7, data, len);
    }
    f[7 + len] = ipmb_peer_csum(f + 3, 4 + len);
    job->kind = IPMB_PEER_JOB_FRAME;
    job->len = len + 8;
    s->q_count++;
    return true;
}

/* OEM burst: the request's data is rx[6 .. 6 + len - 1]. */
static bool ipmb_peer_burst(IPMBPeerState *s, const uint8_t *d,
                            unsigned int len)
{
    IPMBPeerJob *job;
    uint32_t count;
    uint16_t dlen;

    if (len != 6) {
        return ipmb_peer_respond(s, IPMB_CC_BAD_LENGTH, NULL, 0);
    }
    count = d[1] | d[2] << 8;
    dlen = d[4] | d[5] << 8;
    if (d[3] > 2 || dlen > IPMB_BURST_MAX_DLEN) {
        return ipmb_peer_respond(s, IPMB_CC_BAD_DATA, NULL, 0);
    }
    /* The response and the burst job are queued together or not at all. */
    if (count && s->q_count > IPMB_PEER_QUEUE_LEN - 2) {
        return false;
    }
    if (!ipmb_peer_respond(s, IPMB_CC_OK, NULL, 0)) {
        return false;
    }
    if (count) {
        job = ipmb_peer_queue_slot(s, 0);
        job->kind = IPMB_PEER_JOB_BURST;
        job->dest = d[0];
        job->corrupt = d[3];
        job->dlen = dlen;
        job->next = 0;
        job->count = count;
        s->q_count++;
    }
    return true;
}

/* A write to us ended: answer it if it is a valid request. */
static void ipmb_peer_handle_frame(IPMBPeerState *s)
{
    const uint8_t *f = s->rx;
    unsigned int len = s->rx_len;
    const uint8_t *data = f + 6;
    unsigned int dlen;
    uint8_t netfn, cmd;
    bool queued;

    if (s->rx_overrun) {
        ipmb_peer_drop(s, "longer than " stringify(IPMB_PEER_MAX_REQ));
        return;
    }
    if (len < IPMB_PEER_MIN_FRAME) {
        trace_ipmb_peer_ignored(I2C_SLAVE(s)->address, len, "short");
        return;
    }
    if (ipmb_peer_csum(f, 3)) {
        trace_ipmb_peer_ignored(I2C_SLAVE(s)->address, len, "bad cs1");
        return;
    }
    if (ipmb_peer_csum(f + 3, len - 3)) {
        trace_ipmb_peer_ignored(I2C_SLAVE(s)->address, len, "bad cs2");
        return;
    }
    netfn = f[1] >> 2;
    cmd = f[5];
    dlen = len - IPMB_PEER_MIN_FRAME;
    if (netfn & 1) {
        trace_ipmb_peer_ignored(I2C_SLAVE(s)->address, len, "response");
        return;
    }
    trace_ipmb_peer_request(I2C_SLAVE(s)->address, f[3], netfn, cmd,
                            f[4] >> 2, len);

    if (netfn == IPMB_NETFN_APP && cmd == IPMB_CMD_GET_DEVICE_ID) {
        queued = ipmb_peer_respond(s, IPMB_CC_OK, ipmb_peer_device_id,
                                   sizeof(ipmb_peer_device_id));
    } else if (netfn == IPMB_NETFN_OEM && cmd == IPMB_CMD_ECHO) {
        queued = ipmb_peer_respond(s, IPMB_CC_OK, data, dlen);
    } else if (netfn == IPMB_NETFN_OEM && cmd == IPMB_CMD_BURST) {
        queued = ipmb_peer_burst(s, data, dlen);
    } else {
        queued = ipmb_peer_respond(s, IPMB_CC_INVALID_CMD, NULL, 0);
    }
    if (!queued) {
        ipmb_peer_drop(s, "outgoing queue full");
        return;
    }
    ipmb_peer_want_bus(s);
}

static int ipmb_peer_event(I2CSlave *i2c, enum i2c_event event)
{
    IPMBPeerState *s = IPMB_PEER(i2c);

    switch (event) {
    case I2C_START_SEND:
        if (s->rx_active) {
            ipmb_peer_drop(s, "repeated start");
        }
        s->rx_active = true;
        s->rx_overrun = false;
        s->rx[0] = ipmb_peer_own8(s);
        s->rx_len = 1;
        return 0;

    case I2C_FINISH:
        if (s->rx_active) {
            s->rx_active = false;
            ipmb_peer_handle_frame(s);
        }
        return 0;

    case I2C_START_RECV:
        qemu_log_mask(LOG_GUEST_ERROR, "%s: 0x%02x: reads are not supported\n",
                      TYPE_IPMB_PEER, i2c->address);
        return -1;

    case I2C_START_SEND_ASYNC:
        /* Another device mastering the bus: we have no send_async. */
        return -1;

    case I2C_NACK:
        return 0;
    }
    return -1;
}

static int ipmb_peer_send(I2CSlave *i2c, uint8_t data)
{
    IPMBPeerState *s = IPMB_PEER(i2c);

    if (s->rx_len == IPMB_PEER_MAX_REQ) {
        s->rx_overrun = true;
        return 0;
    }
    s->rx[s->rx_len++] = data;
    return 0;
}

static uint8_t ipmb_peer_recv(I2CSlave *i2c)
{
    return 0xff;
}

static void ipmb_peer_reset(DeviceState *dev)
{
    IPMBPeerState *s = IPMB_PEER(dev);

    s->rx_active = false;
    s->rx_len = 0;
    s->q_head = 0;
    s->q_count = 0;
    if (s->tx_state == IPMB_PEER_TX_SEND && s->bus->bh == s->bh) {
        /* Nobody will ACK what we were sending. */
        i2c_end_transfer(s->bus);
        s->tx_state = IPMB_PEER_TX_IDLE;
        i2c_bus_release(s->bus);
    }
    /* In IPMB_PEER_TX_WAIT_BUS, the bh gives the bus back unused. */
}

static void ipmb_peer_realize(DeviceState *dev, Error **errp)
{
    IPMBPeerState *s = IPMB_PEER(dev);

    s->bus = I2C_BUS(qdev_get_parent_bus(dev));
    s->bh = qemu_bh_new(ipmb_peer_bh, s);
    s->kick_bh = qemu_bh_new(ipmb_peer_kick_bh, s);
}

static const VMStateDescription vmstate_ipmb_peer = {
    .name = TYPE_IPMB_PEER,
    .unmigratable = 1,
};

static void ipmb_peer_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    I2CSlaveClass *sc = I2C_SLAVE_CLASS(oc);

    dc->desc = "IPMB peer management controller (test device)";
    dc->realize = ipmb_peer_realize;
    dc->vmsd = &vmstate_ipmb_peer;
    device_class_set_legacy_reset(dc, ipmb_peer_reset);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);

    sc->event = ipmb_peer_event;
    sc->send = ipmb_peer_send;
    sc->recv = ipmb_peer_recv;
}

static const TypeInfo ipmb_peer_info = {
    .name = TYPE_IPMB_PEER,
    .parent = TYPE_I2C_SLAVE,
    .instance_size = sizeof(IPMBPeerState),
    .class_init = ipmb_peer_class_init,
};

static void ipmb_peer_register_types(void)
{
    type_register_static(&ipmb_peer_info);
}

type_init(ipmb_peer_register_types)
