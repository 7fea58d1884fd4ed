"""Configuration texts for the proxy benchmark: nginx backends, buddylb, HAProxy.

Owns the *equivalence* of the two balancers.  Both serve the seed's two VIPs on
127.0.0.100 (SPEC §2 example): VIP http -> farm/backend `http`, VIP https -> farm/backend
`decrypted` (TLS terminated at the balancer, forwarded plain), rservers lnx1
(127.0.1.11) and lnx2 (127.0.1.12), round robin, source-address persistence shared
across the two farms:
- buddylb: the SPEC §2 text as tests/e2e/configs.py builds it (`shopping_cart`): sticky
  groups stick-cart and stick-credit (`address both`, /32, 30 min) in buddy sticky
  group alpha, lnx1 blue / lnx2 red in both farms; L7 VIPs (`policy-map type
  loadbalance http`) or plain L4 VIPs;
- HAProxy: `stick-table type ip size 1m expire 30m` + `stick on src` in backend http,
  `stick on src table http` in backend decrypted, the same server ids in both, so a
  client stuck to lnx1 in one backend reaches lnx1 in the other.  `mode http` with
  `option forwardfor` and X-Forwarded-Proto (buddylb adds both on L7 VIPs), or
  `mode tcp`; buddylb's default timeouts (SPEC §5, `timeout tunnel` 1 h for WebSockets);
  no logging on either side.
  The TLS VIP offers ALPN h2 and http/1.1 on both (buddylb: always on L7 TLS VIPs;
  HAProxy: `alpn h2,http/1.1`): wrk asks for no ALPN and speaks HTTP/1.1, h2load HTTP/2.
The nginx backends serve a small static body and a 1 MiB file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.configs import shopping_cart

VIP = "127.0.0.100"
HOSTS = {"lnx1": "127.0.1.11", "lnx2": "127.0.1.12"}
SMALL = "/small.html"
BULK = "/1m.bin"
SMALL_BODY = b"<html><body>buddylb bench: a small static body from nginx</body></html>\n"
BULK_SIZE = 1 << 20


@dataclass(frozen=True)
class Ports:
    http: int  # farm http on lnx1 and lnx2
    dec: int  # farm decrypted on lnx1 and lnx2
    vip_http: int
    vip_https: int

    def as_e2e(self) -> dict[str, int]:
        return {"lnx1_http": self.http, "lnx2_http": self.http, "lnx1_dec": self.dec, "lnx2_dec": self.dec,
                "vip_http": self.vip_http, "vip_https": self.vip_https}


def write_docroot(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / SMALL.lstrip("/")).write_bytes(SMALL_BODY)
    (root / BULK.lstrip("/")).write_bytes(bytes(range(256)) * (BULK_SIZE // 256))
    return root


def nginx_config(name: str, address: str, ports: Ports, workdir: Path, docroot: Path) -> str:
    """One backend host: `worker_processes 1`, foreground, its own pid / error log / temp paths."""
    tmp = workdir / f"nginx-{name}"
    return f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server {{
        listen {address}:{ports.http};
        listen {address}:{ports.dec};
        root {docroot};
        add_header X-Backend {name};
    }}
}}
"""


def buddylb_config(ports: Ports, l7: bool) -> str:
    """The SPEC §2 example (tests/e2e/configs.py `shopping_cart`) with these ports; TLS via SHOP-TLS."""
    return shopping_cart(ports.as_e2e(), tls=True, http_l7=l7)


def haproxy_config(ports: Ports, l7: bool, pem: Path, socket_path: Path) -> str:
    mode = "http" if l7 else "tcp"
    http_only = "    option forwardfor\n" if l7 else ""
    proto = (lambda p: f"    http-request set-header X-Forwarded-Proto {p}\n") if l7 else (lambda p: "")
    servers = "".join(f"    server {n} {a}:{{port}} id {i}\n" for i, (n, a) in enumerate(HOSTS.items(), 1))
    return f"""global
    nbthread 1
    maxconn 4096
    stats socket {socket_path} mode 600 level admin
defaults
    mode {mode}
{http_only}    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout http-request 10s
    timeout http-keep-alive 5s
    timeout tunnel 1h
frontend http-vip
    bind {VIP}:{ports.vip_http}
{proto("http")}    default_backend http
frontend https-vip
    bind {VIP}:{ports.vip_https} ssl crt {pem} alpn h2,http/1.1
{proto("https")}    default_backend decrypted
backend http
    balance roundrobin
    stick-table type ip size 1m expire 30m
    stick on src
{servers.format(port=ports.http)}backend decrypted
    balance roundrobin
    stick on src table http
{servers.format(port=ports.dec)}"""


def make_cert(folder: Path, stem: str = "shop") -> tuple[Path, Path, Path]:
    """A throwaway self-signed certificate (buddylb.demo.certs, the one maker) for the VIP:
    (cert, key, cert+key PEM for HAProxy)."""
    from buddylb.demo.certs import make_cert as _make_cert

    crt, pem_key = _make_cert(folder, stem, VIP, common_name="bench.buddylb.test")
    both = folder / f"{stem}.pem"
    both.touch(mode=0o600)
    both.chmod(0o600)  # a file left from an earlier run keeps its mode otherwise
    both.write_bytes(crt.read_bytes() + pem_key.read_bytes())
    return crt, pem_key, both
