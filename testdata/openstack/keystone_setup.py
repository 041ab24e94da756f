"""Keystone content for the openstack provider's tests (idempotent): the load-balancer
service in the catalog, projects demo and alt_demo with member users, the octavia service
user, an application credential of demo_member, and clouds.yaml + secure.yaml."""
import json
import os

import requests

K, PW, D = os.environ["KURL"] + "/v3", os.environ["PW"], os.environ["D"]
DOMAIN = {"id": "default"}


def token(user, project):
    r = requests.post(K + "/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"],
                     "password": {"user": {"name": user, "domain": DOMAIN, "password": PW}}},
        "scope": {"project": {"name": project, "domain": DOMAIN}}}})
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"]


H = {"X-Auth-Token": token("admin", "admin")[0]}


def get(kind, **q):
    r = requests.get(f"{K}/{kind}", headers=H, params=q, timeout=30)
    r.raise_for_status()
    return r.json()[kind]


def ensure(kind, one, body, **q):
    found = get(kind, **q)
    if found:
        return found[0]
    r = requests.post(f"{K}/{kind}", headers=H, json={one: body}, timeout=30)
    r.raise_for_status()
    return r.json()[one]


def grant(project, user, role):
    requests.put(f"{K}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}",
                 headers=H, timeout=30).raise_for_status()


svc = ensure("services", "service", {"type": "load-balancer", "name": "octavia"}, type="load-balancer")
for iface in ("public", "internal", "admin"):
    ensure("endpoints", "endpoint", {"service_id": svc["id"], "interface": iface,
                                     "region_id": "RegionOne", "url": os.environ["OURL"]},
           service_id=svc["id"], interface=iface)
roles = {n: ensure("roles", "role", {"name": n}, name=n) for n in ("admin", "member", "reader", "service")}
service = ensure("projects", "project", {"name": "service", "domain_id": "default"}, name="service")
octavia = ensure("users", "user", {"name": "octavia", "domain_id": "default", "password": PW,
                                   "default_project_id": service["id"]}, name="octavia")
grant(service, octavia, roles["admin"])
grant(service, octavia, roles["service"])
projects = {}
for proj in ("demo", "alt_demo"):
    p = ensure("projects", "project", {"name": proj, "domain_id": "default"}, name=proj)
    u = ensure("users", "user", {"name": f"{proj}_member", "domain_id": "default", "password": PW,
                                 "default_project_id": p["id"]}, name=f"{proj}_member")
    grant(p, u, roles["member"])
    projects[proj] = p["id"]
reader = ensure("users", "user", {"name": "demo_reader", "domain_id": "default", "password": PW,
                                  "default_project_id": projects["demo"]}, name="demo_reader")
grant({"id": projects["demo"]}, reader, roles["reader"])

# The application credential's secret is shown once, at creation: keep it, reuse it while it works.
path = os.path.join(D, "appcred.json")
tok, body = token("demo_member", "demo")
uid = body["user"]["id"]
ac = None
if os.path.exists(path):
    ac = json.load(open(path))
    r = requests.post(K + "/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}})
    if r.status_code != 201:
        ac = None
if ac is None:
    for old in requests.get(f"{K}/users/{uid}/application_credentials", headers={"X-Auth-Token": tok},
                            params={"name": "demo-appcred"}, timeout=30).json()["application_credentials"]:
        requests.delete(f"{K}/users/{uid}/application_credentials/{old['id']}",
                        headers={"X-Auth-Token": tok}, timeout=30)
    r = requests.post(f"{K}/users/{uid}/application_credentials", headers={"X-Auth-Token": tok},
                      json={"application_credential": {"name": "demo-appcred"}}, timeout=30)
    r.raise_for_status()
    ac = r.json()["application_credential"]
    ac = {"id": ac["id"], "secret": ac["secret"]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(ac, f)


def password_cloud(user, project, password=True):
    auth = {"auth_url": K, "username": user, "project_name": project,
            "user_domain_name": "Default", "project_domain_name": "Default"}
    if password:
        auth["password"] = PW
    return {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}


clouds = {
    "admin": password_cloud("admin", "admin"),
    "demo": password_cloud("demo_member", "demo"),
    "alt_demo": password_cloud("alt_demo_member", "alt_demo"),
    "demo_reader": password_cloud("demo_reader", "demo"),
    "demo-appcred": {"auth_type": "v3applicationcredential", "region_name": "RegionOne",
                     "identity_api_version": 3,
                     "auth": {"auth_url": K, "application_credential_id": ac["id"],
                              "application_credential_secret": ac["secret"]}},
    # the password of this one lives in secure.yaml, as operators keep it
    "demo-secure": password_cloud("demo_member", "demo", password=False),
}
secure = {"clouds": {"demo-secure": {"auth": {"password": PW}}}}
for name, doc in (("clouds.yaml", {"clouds": clouds}), ("secure.yaml", secure)):
    fd = os.open(os.path.join(D, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)  # JSON is YAML
with open(os.path.join(D, "projects.json"), "w") as f:
    json.dump(projects, f)
