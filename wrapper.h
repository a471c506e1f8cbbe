/* Kernel UAPI headers the agent speaks. build.rs runs bindgen over this file,
 * so constants and structs come from the kernel's own definitions. */
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
