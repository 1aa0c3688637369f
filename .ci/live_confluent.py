#!/usr/bin/env python3
"""Real clients against `ksim serve` while its brokers die (issue 26), with PyPI's confluent-kafka:
the same librdkafka as Confluent.Kafka (.NET) at the same version.

(a) An idempotent producer with acks=all writes to orders-0 while that partition's leader is
    killed through the control channel (`Kill(Broker(N))` on ksim serve's stdin). The client
    fails over by itself (no help from this script); afterwards every message it was told was
    delivered is read back, at the offset it was told.
(b) A consumer group of two consumers splits the topic's partitions and commits; one leaves and
    the other takes every partition (a rebalance); then the group's coordinator is killed, and
    the offsets committed before are still the group's, read back through the client from the
    new coordinator.

Usage: live_confluent.py KSIM SCENARIO BASE_PORT WORKDIR
For a failure: LIVE_ONLY_GROUP=1 runs (b) alone, LIVE_DEBUG=1 prints the consumer's coordinator
log lines, LIVE_RDKAFKA_DEBUG=cgrp,fetch sets librdkafka's `debug` for the group's members.
"""

import logging
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

TOPIC = "orders"
PARTITIONS = 4


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


class Serve:
    """`ksim serve` with its control channel on a pipe: one action per line, `ok` or `error: why`."""

    def __init__(self, ksim, scenario, port, workdir):
        self.err = open(f"{workdir}/serve.err", "w")
        self.proc = subprocess.Popen(
            [ksim, "serve", scenario, "--base-port", str(port), "--trace", f"{workdir}/live.json"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.rest = []
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=30)
        if not first.startswith("bootstrap: "):
            fail(f"first line of ksim serve: {first!r}")
        self.bootstrap = first[len("bootstrap: "):].strip()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def control(self, action):
        self.proc.stdin.write(action + "\n")
        self.proc.stdin.flush()
        answer = self.lines.get(timeout=10)
        print(f"  control: {action} -> {answer.strip()}", flush=True)
        if answer.strip() != "ok":
            fail(f"{action}: {answer!r}")

    def quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        code = self.proc.wait(timeout=30)
        report = []
        while (line := self.lines.get(timeout=10)) is not None:
            report.append(line)
        return code, "".join(report)


def leaders(bootstrap):
    """Partition -> leader of `orders`, from the client's metadata."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    return {p: m.leader for p, m in topic.partitions.items()}


def wait_for(what, check, within=60, state=None):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    fail(f"no {what} within {within} s" + (f": {state()}" if state else ""))


def produce_while_the_leader_dies(serve):
    start = wait_for("leader for every partition",
                     lambda: (l := leaders(serve.bootstrap)) and len(l) == PARTITIONS and all(v >= 0 for v in l.values()) and l)
    victim = start[0]
    print(f"(a) orders-0 is led by broker {victim}; producing with acks=all, enable.idempotence=true", flush=True)
    delivered, failed = {}, []

    def report(err, msg):
        if err is not None:
            failed.append((msg.value().decode(), str(err)))
        else:
            delivered[msg.value().decode()] = msg.offset()

    producer = Producer({
        "bootstrap.servers": serve.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # Long enough to outlast the failover (the controller waits broker.session.timeout.ms).
        "message.timeout.ms": 60000,
    })
    total, kill_at = 300, 100
    for i in range(total):
        producer.produce(TOPIC, value=f"message-{i}".encode(), key=f"k{i}".encode(), partition=0, on_delivery=report)
        producer.poll(0)
        if i == kill_at:
            producer.flush(10)
            if len(delivered) != kill_at + 1:
                fail(f"before the kill only {len(delivered)} of {kill_at + 1} were delivered ({failed[:3]})")
            serve.control(f"Kill(Broker({victim}))")
        time.sleep(0.01)
    left = producer.flush(90)
    if left or failed:
        fail(f"{left} messages undelivered, {len(failed)} failed: {failed[:3]}")
    if len(delivered) != total:
        fail(f"{len(delivered)} of {total} delivered")
    after = leaders(serve.bootstrap)
    if after[0] in (victim, -1):
        fail(f"orders-0 is still led by {after[0]}")
    print(f"(a) all {total} delivered; the producer failed over to broker {after[0]} by itself", flush=True)

    # Read orders-0 back from the start: every delivered message, at its delivered offset.
    consumer = Consumer({"bootstrap.servers": serve.bootstrap, "group.id": "verify-a", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < total and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        seen[msg.value().decode()] = msg.offset()
    consumer.close()
    missing = [v for v in delivered if seen.get(v) != delivered[v]]
    if missing:
        fail(f"{len(missing)} delivered messages not read back at their offsets, e.g. {missing[:3]}")
    print(f"(a) read back all {total} at the offsets the producer was given", flush=True)
    serve.control(f"Restart(Broker({victim}))")


class Member:
    """A consumer of the group, with the partitions it was given and its librdkafka log."""

    def __init__(self, name, bootstrap, group):
        self.name, self.assigned, self.log = name, set(), []
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        member = self

        class Keep(logging.Handler):
            def emit(self, record):
                member.log.append(record.getMessage())

        logger.addHandler(Keep())
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "debug": os.environ.get("LIVE_RDKAFKA_DEBUG", "cgrp"),
        }, logger=logger)
        self.consumer.subscribe([TOPIC], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.consumed = {}

    def _on_assign(self, consumer, partitions):
        self.assigned = {p.partition for p in partitions}
        print(f"  {self.name} assigned {sorted(self.assigned)}", flush=True)

    def _on_revoke(self, consumer, partitions):
        self.assigned = set()

    def poll(self, seconds=0.2):
        for msg in self.consumer.consume(num_messages=1000, timeout=seconds):
            if not msg.error():
                self.consumed[msg.partition()] = msg.offset() + 1

    def coordinator(self):
        """The coordinator's broker id, as this client found it (its cgrp debug log)."""
        for line in reversed(self.log):
            m = re.search(r'changing coordinator -?\d+ -> (\d+)', line)
            if m:
                return int(m.group(1))
        return None


def group_rebalances_and_keeps_its_offsets(serve):
    # Some records on every partition, so every member has something to commit.
    producer = Producer({"bootstrap.servers": serve.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(40):
        producer.produce(TOPIC, value=f"group-{i}".encode(), partition=i % PARTITIONS)
    if producer.flush(60):
        fail("the group's records were not delivered")
    admin_meta = Consumer({"bootstrap.servers": serve.bootstrap, "group.id": "watermarks"})
    ends = {p: admin_meta.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(PARTITIONS)}
    admin_meta.close()

    group = "live-group"
    a, b = Member("a", serve.bootstrap, group), Member("b", serve.bootstrap, group)

    def polled(*members):
        for m in members:
            m.poll()

    wait_for("a split of the partitions between two members",
             lambda: polled(a, b) or (a.assigned and b.assigned and a.assigned | b.assigned == set(range(PARTITIONS))))
    print(f"(b) two members: a has {sorted(a.assigned)}, b has {sorted(b.assigned)}", flush=True)
    def consumed_all():
        polled(a, b)
        got = {**a.consumed, **b.consumed}
        return all(got.get(p, 0) >= ends[p] for p in range(PARTITIONS))

    wait_for("every record consumed", consumed_all,
             state=lambda: f"ends {ends}, a read to {a.consumed}, b read to {b.consumed}\n"
             + "\n".join(l for l in (a.log + b.log) if "[0]" in l)[-4000:])
    for m in (a, b):
        m.consumer.commit(asynchronous=False)
    committed = {p: ends[p] for p in range(PARTITIONS) if ends[p] > 0}

    b.consumer.close()  # LeaveGroup: a is given every partition
    wait_for("a rebalance giving a every partition",
             lambda: polled(a) or a.assigned == set(range(PARTITIONS)))
    print(f"(b) b left; a has {sorted(a.assigned)}", flush=True)

    coordinator = wait_for("the group coordinator in the client's log", a.coordinator)
    if os.environ.get("LIVE_DEBUG"):
        print("\n".join(l for l in a.log if "oordinator" in l)[-3000:])
    serve.control(f"Kill(Broker({coordinator}))")

    def offsets_back():
        a.poll()
        try:
            got = a.consumer.committed([TopicPartition(TOPIC, p) for p in committed], timeout=5)
        except KafkaException:
            return None
        offsets = {tp.partition: tp.offset for tp in got}
        return offsets if offsets == committed else None

    # The client finds the new coordinator by itself (FindCoordinator, once the controller has
    # moved the group's __consumer_offsets partition); then it asks it for the offsets.
    moved = wait_for("a new coordinator found by the client",
                     lambda: a.poll() or ((c := a.coordinator()) not in (None, coordinator) and c), within=90)
    wait_for("the committed offsets from the new coordinator", offsets_back, within=60,
             state=lambda: f"committed before: {committed}")
    print(f"(b) coordinator broker {coordinator} killed; broker {moved} serves the committed offsets {committed}",
          flush=True)
    a.consumer.close()
    serve.control(f"Restart(Broker({coordinator}))")


def main():
    ksim, scenario, port, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    serve = Serve(ksim, scenario, port, workdir)
    try:
        print(f"bootstrap: {serve.bootstrap}", flush=True)
        if not os.environ.get("LIVE_ONLY_GROUP"):
            produce_while_the_leader_dies(serve)
        group_rebalances_and_keeps_its_offsets(serve)
        code, report = serve.quit()
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait()
    if "not deterministic" not in report:
        fail(f"no report after quit:\n{report}")
    print(report, flush=True)
    for p in range(port, port + 3):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", p)) == 0:
                fail(f"port {p} still accepts connections after quit")
    print(f"live-confluent: passed (ksim serve exited {code}: its checker's verdict on the run is above)", flush=True)


if __name__ == "__main__":
    main()
