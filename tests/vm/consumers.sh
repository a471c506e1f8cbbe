# Sourced in the rxe VM by guest-check.sh and top-guest.sh: cgroup v2 with
# a Slurm-shaped and a kubepods-shaped (systemd driver, containerd) cgroup,
# the RC pingpong server in the first, the client in the second, and a host
# root ($HOST) with the passwd and pod log directory attribution reads.
# Sets $server, $client (their pids) and $HOST; $1 = where $HOST goes,
# $2 = the file for mount's errors.
start_consumers() {
  CG=/tmp/cgroup2
  POD_UID=1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901
  CID=$(printf 'ab%.0s' $(seq 32))
  SLURM=$CG/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0
  KUBE=$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$(echo $POD_UID | tr - _).slice/cri-containerd-$CID.scope
  HOST=$1
  mkdir -p $CG "$HOST/etc" "$HOST/var/log/pods/ml-team_trainer-0_$POD_UID/trainer"
  echo "root:x:0:0:root:/root:/bin/sh" > "$HOST/etc/passwd"
  mount -t cgroup2 none $CG 2> "$2"
  mkdir -p $SLURM $KUBE
  sh -c "echo \$\$ > $SLURM/cgroup.procs && exec ibv_rc_pingpong -d rxe1 -g 1 -n 100000000 -p 19998" > /dev/null 2>&1 &
  server=$!
  sleep 0.5
  sh -c "echo \$\$ > $KUBE/cgroup.procs && exec ibv_rc_pingpong -d rxe0 -g 1 -n 100000000 -p 19998 192.0.2.2" > /dev/null 2>&1 &
  client=$!
  sleep 2
}
