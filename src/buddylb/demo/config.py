"""The two configurations `buddylb demo` embeds, filled in with the ports it found free.

Owns the text only: the SPEC §2 shopping-cart example (context Admin: an L7 HTTP cart
VIP and a TLS-terminated checkout VIP, buddy real groups blue/red, buddy sticky group
alpha) and the seed's many-to-one web -> app tiers (context tiers).  Names follow the
examples in `examples/` exactly; only addresses and ports differ.  It never binds or
writes anything: `runner` writes the file, `backends` opens the ports.
"""
from __future__ import annotations

from dataclasses import dataclass

VIP = "127.0.0.100"
HOSTS: dict[str, str] = {"lnx1": "127.0.1.11", "lnx2": "127.0.1.12", "lnx3": "127.0.1.13",
                         "lnx4": "127.0.1.14", "db1": "127.0.1.21", "db2": "127.0.1.22"}
# serverfarm -> (context, its rservers); every rserver of a farm listens on the farm's port
FARMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "http": ("Admin", ("lnx1", "lnx2")),
    "decrypted": ("Admin", ("lnx1", "lnx2")),
    "web": ("tiers", ("lnx1", "lnx2", "lnx3", "lnx4")),
    "app": ("tiers", ("db1", "db2")),
}
BUDDY_REAL_GROUP: dict[tuple[str, str], str] = {
    ("http", "lnx1"): "blue", ("http", "lnx2"): "red",
    ("decrypted", "lnx1"): "blue", ("decrypted", "lnx2"): "red",
    ("web", "lnx1"): "blue", ("web", "lnx2"): "blue", ("web", "lnx3"): "red", ("web", "lnx4"): "red",
    ("app", "db1"): "blue", ("app", "db2"): "red",
}
CERT_STEM = "shop"  # ssl-proxy service SHOP-TLS: cert shop.crt, key shop.key (beside the config)


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Where everything listens: one port per serverfarm, one per VIP."""

    farms: dict[str, int]  # serverfarm -> the port of each of its rservers
    cart: int  # HTTP VIP -> farm http (L7)
    checkout: int  # HTTPS VIP, TLS ends at buddylb -> farm decrypted (L7)
    web: int  # tiers: HTTP VIP -> farm web (L7)
    app: int  # tiers: TCP VIP -> farm app (L4)


_HOST = "rserver host {name}\n  ip address {address}\n  inservice\n"

CART = """\
! The SPEC §2 shopping-cart example: cart on HTTP, checkout on HTTPS (TLS ends here).
! A client stuck to lnx1 in farm http reaches lnx1 in farm decrypted (buddy real group
! blue), lnx2 reaches lnx2 (red): stick-cart and stick-credit share buddy sticky group alpha.
context Admin
{hosts}
probe tcp TCP-CHECK
  interval 2
  faildetect 2
  passdetect interval 2

serverfarm host http
  predictor roundrobin
  probe TCP-CHECK
  rserver lnx1 {http}
    buddy-group blue
    inservice
  rserver lnx2 {http}
    buddy-group red
    inservice
serverfarm host decrypted
  rserver lnx1 {decrypted}                     ! PAT: VIP port {checkout} -> real port {decrypted}
    buddy-group blue
    inservice
  rserver lnx2 {decrypted}
    buddy-group red
    inservice

sticky ip-netmask 255.255.255.255 address both stick-cart
  timeout 30
  serverfarm http
  buddy-group alpha
sticky ip-netmask 255.255.255.255 address both stick-credit
  timeout 30
  serverfarm decrypted
  buddy-group alpha

class-map match-all http-vip
  2 match virtual-address {vip} tcp eq {cart}
class-map match-all https-vip
  2 match virtual-address {vip} tcp eq {checkout}

policy-map type loadbalance http first-match http-sticky
  class class-default
    sticky-serverfarm stick-cart
policy-map type loadbalance http first-match https-sticky
  class class-default
    sticky-serverfarm stick-credit

policy-map multi-match int
  class http-vip
    loadbalance vip inservice
    loadbalance policy http-sticky
  class https-vip
    loadbalance vip inservice
    loadbalance policy https-sticky
    ssl-proxy server SHOP-TLS                  ! terminate TLS here, forward plain

ssl-proxy service SHOP-TLS
  cert {stem}.crt
  key {stem}.key

service-policy input int
"""

TIERS = """\
! The seed's many-to-one tiers: a client on web lnx1 or lnx2 (blue) reaches app db1, one on
! lnx3 or lnx4 (red) reaches db2, and back on web it returns to the web server it had.
context tiers
{hosts}
probe tcp TCP-CHECK
  interval 2
  faildetect 2
  passdetect interval 2

serverfarm host web
  predictor roundrobin
  probe TCP-CHECK
  rserver lnx1 {web}
    buddy-group blue
    inservice
  rserver lnx2 {web}
    buddy-group blue
    inservice
  rserver lnx3 {web}
    buddy-group red
    inservice
  rserver lnx4 {web}
    buddy-group red
    inservice
serverfarm host app
  predictor leastconns
  probe TCP-CHECK
  rserver db1 {app}
    buddy-group blue
    inservice
  rserver db2 {app}
    buddy-group red
    inservice

sticky ip-netmask 255.255.255.255 address source web-sticky
  timeout 30
  serverfarm web
  buddy-group tiers
sticky ip-netmask 255.255.255.255 address source app-sticky
  timeout 30
  serverfarm app
  buddy-group tiers

class-map match-all web-vip
  2 match virtual-address {vip} tcp eq {web_vip}
class-map match-all app-vip
  2 match virtual-address {vip} tcp eq {app_vip}

policy-map type loadbalance http first-match web-policy   ! L7: HTTP requests
  class class-default
    sticky-serverfarm web-sticky
policy-map type loadbalance first-match app-policy        ! L4: TCP bytes
  class class-default
    sticky-serverfarm app-sticky

policy-map multi-match tiers-vips
  class web-vip
    loadbalance vip inservice
    loadbalance policy web-policy
  class app-vip
    loadbalance vip inservice
    loadbalance policy app-policy

service-policy input tiers-vips
"""


def _hosts(farms: tuple[str, ...]) -> str:
    names = dict.fromkeys(rs for f in farms for rs in FARMS[f][1])
    return "".join(_HOST.format(name=n, address=HOSTS[n]) for n in names)


def render_config(p: DemoPorts) -> str:
    """Both examples in one file: context Admin (the cart), then context tiers."""
    cart = CART.format(hosts=_hosts(("http", "decrypted")), http=p.farms["http"], decrypted=p.farms["decrypted"],
                       vip=VIP, cart=p.cart, checkout=p.checkout, stem=CERT_STEM)
    tiers = TIERS.format(hosts=_hosts(("web", "app")), web=p.farms["web"], app=p.farms["app"], vip=VIP,
                         web_vip=p.web, app_vip=p.app)
    return cart + "\n" + tiers
