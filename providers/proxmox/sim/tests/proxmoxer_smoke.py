"""Drive ballast's PVE simulator with the unmodified third-party client proxmoxer.

Run by tests/api.rs (proxmoxer_works_unchanged); argv: host port token_secret password ca_file node.
"""
import sys

from proxmoxer import ProxmoxAPI
from proxmoxer.tools import Tasks

host, port, secret, password, ca, node = sys.argv[1:]

def run(p, name):
    nodes = [n["node"] for n in p.nodes.get()]
    assert node in nodes, nodes
    vmid = int(p.cluster.nextid.get())
    upid = p.nodes(node).qemu.post(vmid=vmid, name=name, memory=1024, cores=1,
                                   scsi0="local-lvm:4", net0="virtio,bridge=vmbr0")
    assert Tasks.decode_upid(upid)["type"] == "qmcreate", upid
    status = Tasks.blocking_status(p, upid, timeout=30, polling_interval=0.05)
    assert status["exitstatus"] == "OK", status
    cfg = p.nodes(node).qemu(vmid).config.get()
    assert cfg["name"] == name and cfg["cores"] == 1, cfg
    upid = p.nodes(node).qemu(vmid).delete(purge=1)
    status = Tasks.blocking_status(p, upid, timeout=30, polling_interval=0.05)
    assert status["exitstatus"] == "OK", status
    assert vmid not in [v["vmid"] for v in p.nodes(node).qemu.get()]

run(ProxmoxAPI(host, port=int(port), user="root@pam", token_name="ballast",
               token_value=secret, verify_ssl=ca), "via-token")
run(ProxmoxAPI(host, port=int(port), user="root@pam", password=password, verify_ssl=ca),
    "via-ticket")
print("proxmoxer OK")
