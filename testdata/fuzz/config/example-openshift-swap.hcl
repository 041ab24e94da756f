# Kubelet swap on the worker pool (the "higher density" profile), as the MachineConfig
# 90-worker-kubelet-swap: a script that finds the CNV_SWAP partition, a kubelet drop-in with
# swapBehavior LimitedSwap, and two systemd units. Translated from the real object (see
# README.md). The cluster is the kubeconfig's (KUBECONFIG, or config_path below).

provider "openshift" {
  # config_path    = "~/.kube/config"
  # config_context = "admin"
}

resource "openshift_machine_config" "swap" {
  name = "90-worker-kubelet-swap"
  labels = {
    "machineconfiguration.openshift.io/role" = "worker"
  }
  ignition_version = "3.2.0"

  file {
    path      = "/etc/find-swap-partition"
    mode      = "0755"
    overwrite = true
    contents = <<-EOT
      #!/usr/bin/env bash
      set -euo pipefail

      PARTLABEL="CNV_SWAP"
      DEVICE="/dev/disk/by-partlabel/$${PARTLABEL}"

      if [[ ! -e "$DEVICE" ]]; then
        echo "Swap partition with PARTLABEL=$${PARTLABEL} not found" >&2
        exit 1
      fi

      if swapon --show=NAME | grep -q "$DEVICE"; then
        echo "Swap already enabled on $DEVICE" >&2
        exit 1
      fi

      echo "Enabling swap on $DEVICE" >&2
      swapon "$DEVICE"
      touch /var/tmp/swapfile
    EOT
  }

  file {
    path      = "/etc/openshift/kubelet.conf.d/90-swap.conf"
    mode      = "0644"
    overwrite = true
    contents = <<-EOT
      apiVersion: kubelet.config.k8s.io/v1beta1
      kind: KubeletConfiguration
      memorySwap:
        swapBehavior: LimitedSwap
    EOT
  }

  systemd_unit {
    name    = "swap-provision.service"
    enabled = true
    contents = <<-EOT
      [Unit]
      Description=Provision and enable swap
      ConditionFirstBoot=no
      ConditionPathExists=!/var/tmp/swapfile

      [Service]
      Type=oneshot
      ExecStart=/etc/find-swap-partition

      [Install]
      WantedBy=multi-user.target
      RequiredBy=kubelet-dependencies.target
    EOT
  }

  systemd_unit {
    name    = "cgroup-system-slice-config.service"
    enabled = true
    contents = <<-EOT
      [Unit]
      Description=Restrict swap for system slice
      ConditionFirstBoot=no

      [Service]
      Type=oneshot
      ExecStart=/bin/sh -c "sudo systemctl set-property --runtime system.slice MemorySwapMax=0 IODeviceLatencyTargetSec=\"/ 50ms\""

      [Install]
      RequiredBy=kubelet-dependencies.target
    EOT
  }

  # A rollout drains and reboots every worker, one at a time: hours on a large pool.
  timeouts {
    create = "12h"
    update = "12h"
    delete = "12h"
  }
}
