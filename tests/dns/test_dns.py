"""Cluster DNS over real sockets on 127.0.0.1: every record type of the Kubernetes DNS
specification (schema 1.1.0), negative answers, REFUSED outside the zone, TCP, truncation."""

from __future__ import annotations

from dnslib import QTYPE, DNSRecord

from kubeling.machinery.resources import PODS, SERVICES
from tests.dns.conftest import Dns, udp_exchange
from tests.dns.support import create_pod, create_service, pod, service, set_pod_status

ZONE = "cluster.local"


async def _web(dns: Dns) -> str:
    """A ClusterIP Service ``web`` with a named and an unnamed-protocol port; its IP."""
    svc = await create_service(
        dns.api.client,
        service(
            "web",
            selector={"app": "web"},
            ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
        ),
    )
    return str(svc["spec"]["clusterIP"])


async def test_dns_version_txt(dns: Dns) -> None:
    reply = await dns.query(f"dns-version.{ZONE}", "TXT")
    assert [str(rr.rdata) for rr in reply.rr] == ['"1.1.0"']
    assert reply.header.aa == 1
    assert reply.header.ra == 0


async def test_dns_clusterip_service_a_record(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    reply = await dns.query(f"web.default.svc.{ZONE}")
    assert reply.rr[0].ttl == 5
    assert str(reply.rr[0].rname) == f"web.default.svc.{ZONE}."


async def test_dns_names_match_case_insensitively(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values("WEB.Default.SVC.Cluster.Local", [ip])


async def test_dns_wrong_type_is_nodata_with_soa(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    reply = await dns.query(f"web.default.svc.{ZONE}", "AAAA")
    assert reply.header.rcode == 0
    assert not reply.rr
    assert [QTYPE.get(rr.rtype) for rr in reply.auth] == ["SOA"]
    assert reply.auth[0].rdata.times[-1] == 5  # negative answers cached 5 s at most


async def test_dns_unknown_service_is_nxdomain(dns: Dns) -> None:
    await _web(dns)
    await dns.until_rcode(f"web.default.svc.{ZONE}", "NOERROR")
    assert await dns.rcode(f"nope.default.svc.{ZONE}") == "NXDOMAIN"
    assert await dns.rcode(f"web.nons.svc.{ZONE}") == "NXDOMAIN"
    assert await dns.rcode(f"web.default.nope.{ZONE}") == "NXDOMAIN"
    reply = await dns.query(f"nope.default.svc.{ZONE}")
    assert [QTYPE.get(rr.rtype) for rr in reply.auth] == ["SOA"]
    # the namespace and svc names exist (they have children): NODATA, not NXDOMAIN
    assert await dns.rcode(f"default.svc.{ZONE}") == "NOERROR"
    assert await dns.rcode(f"svc.{ZONE}") == "NOERROR"


async def test_dns_outside_zone_is_refused(dns: Dns) -> None:
    for name in ("example.com", "kubernetes.io", "local", "cluster.local.example.com"):
        reply = await dns.query(name)
        assert reply.header.rcode == 5, name
        assert not reply.rr
        assert reply.header.aa == 0


async def test_dns_clusterip_srv_for_named_ports(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    reply = await dns.query(f"_http._tcp.web.default.svc.{ZONE}", "SRV")
    assert [(rr.rdata.port, str(rr.rdata.target)) for rr in reply.rr] == [
        (80, f"web.default.svc.{ZONE}.")
    ]
    assert [str(rr.rdata) for rr in reply.ar] == [ip]
    udp = await dns.query(f"_dns._udp.web.default.svc.{ZONE}", "SRV")
    assert [rr.rdata.port for rr in udp.rr] == [53]
    assert await dns.rcode(f"_http._udp.web.default.svc.{ZONE}", "SRV") == "NXDOMAIN"
    assert await dns.rcode(f"_nope._tcp.web.default.svc.{ZONE}", "SRV") == "NXDOMAIN"


async def test_dns_unnamed_port_gets_no_srv(dns: Dns) -> None:
    await create_service(
        dns.api.client, service("solo", selector={"app": "x"}, ports=[{"port": 8080}])
    )
    await dns.until_rcode(f"solo.default.svc.{ZONE}", "NOERROR")
    assert await dns.rcode(f"_tcp.solo.default.svc.{ZONE}", "SRV") == "NXDOMAIN"


async def test_dns_ptr_for_cluster_ip(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    assert await dns.values(reverse, "PTR") == [f"web.default.svc.{ZONE}."]


async def test_dns_unknown_reverse_name_is_refused(dns: Dns) -> None:
    assert await dns.rcode("8.8.8.8.in-addr.arpa", "PTR") == "REFUSED"


async def test_dns_headless_a_per_ready_endpoint(dns: Dns) -> None:
    client = dns.api.client
    await create_service(client, service("db", selector={"app": "db"}, headless=True))
    await create_pod(client, pod("db-0", labels={"app": "db"}), ip="10.244.0.2", ready=True)
    p1 = await create_pod(client, pod("db-1", labels={"app": "db"}), ip="10.244.0.3")
    await dns.until_values(f"db.default.svc.{ZONE}", ["10.244.0.2"])
    await set_pod_status(client, p1, ip="10.244.0.3", ready=True)
    await dns.until_values(f"db.default.svc.{ZONE}", ["10.244.0.2", "10.244.0.3"])
    await client.delete(PODS, name="db-0", namespace="default", grace_period_seconds=0)
    await dns.until_values(f"db.default.svc.{ZONE}", ["10.244.0.3"])


async def test_dns_headless_without_ready_endpoints_is_nxdomain(dns: Dns) -> None:
    client = dns.api.client
    await create_service(client, service("db", selector={"app": "db"}, headless=True))
    await create_pod(client, pod("db-0", labels={"app": "db"}), ip="10.244.0.2")
    await dns.until_rcode(f"db.default.svc.{ZONE}", "NXDOMAIN")


async def test_dns_headless_hostname_record_srv_and_ptr(dns: Dns) -> None:
    client = dns.api.client
    await create_service(
        client,
        service(
            "web",
            selector={"app": "web"},
            headless=True,
            ports=[{"name": "http", "port": 80, "targetPort": 8080}],
        ),
    )
    for i in range(2):
        await create_pod(
            client,
            pod(f"web-{i}", labels={"app": "web"}, hostname=f"web-{i}", subdomain="web"),
            ip=f"10.244.0.{i + 2}",
            ready=True,
        )
    await dns.until_values(f"web-0.web.default.svc.{ZONE}", ["10.244.0.2"])
    await dns.until_values(f"web-1.web.default.svc.{ZONE}", ["10.244.0.3"])
    srv = await dns.query(f"_http._tcp.web.default.svc.{ZONE}", "SRV")
    assert sorted((rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr) == [
        (8080, f"web-0.web.default.svc.{ZONE}."),
        (8080, f"web-1.web.default.svc.{ZONE}."),
    ]
    assert sorted(str(rr.rdata) for rr in srv.ar) == ["10.244.0.2", "10.244.0.3"]
    assert await dns.values("2.0.244.10.in-addr.arpa", "PTR") == [f"web-0.web.default.svc.{ZONE}."]
    assert await dns.rcode(f"web-9.web.default.svc.{ZONE}") == "NXDOMAIN"


async def test_dns_endpoint_without_hostname_uses_dashed_ip_label(dns: Dns) -> None:
    client = dns.api.client
    await create_service(
        client,
        service("h", selector={"app": "h"}, headless=True, ports=[{"name": "p", "port": 1}]),
    )
    await create_pod(client, pod("x", labels={"app": "h"}), ip="10.244.0.7", ready=True)
    await dns.until_values(f"10-244-0-7.h.default.svc.{ZONE}", ["10.244.0.7"])
    srv = await dns.query(f"_p._tcp.h.default.svc.{ZONE}", "SRV")
    assert [str(rr.rdata.target) for rr in srv.rr] == [f"10-244-0-7.h.default.svc.{ZONE}."]
    # no hostname: no PTR (only hostnamed endpoints get one)
    assert await dns.rcode("7.0.244.10.in-addr.arpa", "PTR") == "REFUSED"


async def test_dns_external_name_is_cname(dns: Dns) -> None:
    await create_service(
        dns.api.client, service("ext", type_="ExternalName", external_name="db.example.invalid")
    )
    await dns.until_values(f"ext.default.svc.{ZONE}", ["db.example.invalid."], qtype="CNAME")
    reply = await dns.query(f"ext.default.svc.{ZONE}", "A")
    assert [(QTYPE.get(rr.rtype), str(rr.rdata)) for rr in reply.rr] == [
        ("CNAME", "db.example.invalid.")
    ]


async def test_dns_pod_record_only_for_a_pod_with_that_ip(dns: Dns) -> None:
    await create_pod(dns.api.client, pod("p", labels={}), ip="10.244.1.5", ready=False)
    await dns.until_values(f"10-244-1-5.default.pod.{ZONE}", ["10.244.1.5"])
    assert await dns.rcode(f"10-244-1-6.default.pod.{ZONE}") == "NXDOMAIN"
    assert await dns.rcode(f"10-244-1-5.other.pod.{ZONE}") == "NXDOMAIN"


async def test_dns_service_deleted_becomes_nxdomain(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    await dns.api.client.delete(SERVICES, name="web", namespace="default")
    await dns.until_rcode(f"web.default.svc.{ZONE}", "NXDOMAIN")


async def test_dns_tcp_answers_like_udp(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    reply = await dns.query(f"web.default.svc.{ZONE}", tcp=True)
    assert [str(rr.rdata) for rr in reply.rr] == [ip]
    refused = await dns.query("example.com", tcp=True)
    assert refused.header.rcode == 5


async def test_dns_large_udp_answer_truncated_then_complete_over_tcp(dns: Dns) -> None:
    client = dns.api.client
    await create_service(client, service("big", selector={"app": "big"}, headless=True))
    count = 40  # 40 A records (16 bytes each plus the header) exceed 512 bytes
    for i in range(count):
        await create_pod(
            client, pod(f"b{i}", labels={"app": "big"}), ip=f"10.244.2.{i + 1}", ready=True
        )
    expected = sorted(f"10.244.2.{i + 1}" for i in range(count))

    async def complete() -> bool:
        reply = await dns.query(f"big.default.svc.{ZONE}", tcp=True)
        return sorted(str(rr.rdata) for rr in reply.rr) == expected

    from tests.dns.conftest import wait_until

    await wait_until(complete, what="all 40 addresses over TCP")
    udp = await dns.query(f"big.default.svc.{ZONE}")
    assert udp.header.tc == 1
    assert not udp.rr


async def test_dns_malformed_and_non_query_messages(dns: Dns) -> None:
    garbage = b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 20
    reply = DNSRecord.parse(await udp_exchange(dns.addr, garbage))
    assert reply.header.id == 0x1234
    assert reply.header.rcode == 1  # FORMERR
    notify = DNSRecord.question(f"web.default.svc.{ZONE}")
    notify.header.opcode = 4
    answer = DNSRecord.parse(await udp_exchange(dns.addr, notify.pack()))
    assert answer.header.rcode == 4  # NOTIMP


async def test_dns_repeated_query_answers_with_each_request_id(dns: Dns) -> None:
    ip = await _web(dns)
    await dns.until_values(f"web.default.svc.{ZONE}", [ip])
    for qid in (1, 2, 65535):
        question = DNSRecord.question(f"web.default.svc.{ZONE}")
        question.header.id = qid
        reply = DNSRecord.parse(await udp_exchange(dns.addr, question.pack()))
        assert reply.header.id == qid
        assert [str(rr.rdata) for rr in reply.rr] == [ip]


async def test_dns_selectorless_headless_service_from_manual_endpoints(dns: Dns) -> None:
    from kubeling.controllers.endpointslice import build_mirroring
    from kubeling.machinery.resources import ENDPOINTS

    await dns.api.start(build_mirroring(dns.api.ctx))
    await create_service(dns.api.client, service("ext", headless=True))
    await dns.api.client.create(
        ENDPOINTS,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "ext"},
            "subsets": [{"addresses": [{"ip": "10.1.0.5", "hostname": "primary"}]}],
        },
        namespace="default",
    )
    await dns.until_values(f"ext.default.svc.{ZONE}", ["10.1.0.5"])
    await dns.until_values(f"primary.ext.default.svc.{ZONE}", ["10.1.0.5"])


async def test_dns_other_classes_are_refused(dns: Dns) -> None:
    question = DNSRecord.question(f"dns-version.{ZONE}", "TXT", "CH")
    reply = DNSRecord.parse(await udp_exchange(dns.addr, question.pack()))
    assert reply.header.rcode == 5
    assert not reply.rr
