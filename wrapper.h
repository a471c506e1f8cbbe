/* Kernel UAPI headers the agent speaks. `make bindings` runs bindgen over this
 * file (build.rs) into src/sys/uapi.rs, which is committed: constants and
 * structs come from the kernel's own definitions, and a build needs no clang.
 * After editing this file, run `make bindings` and commit the result. */
#include <linux/version.h>
#include <linux/types.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <linux/ethtool.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/genetlink.h>
#include <linux/ethtool_netlink.h>
#include <linux/devlink.h>
#include <linux/dcbnl.h>
#include <rdma/rdma_netlink.h>
#include <rdma/ib_user_mad.h>
