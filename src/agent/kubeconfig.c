/* kubeconfig.c - an agent connection described by a kubeconfig. */
#include <stdio.h>
#include "agent/conf.h"

int bl_kubeconfig_apply(bl_agentconn_t *c, bl_buf_t *err)
{
    bl_buf_printf(err, "%s: kubeconfig files are not supported yet", c->kubeconfig);
    return BL_ERROR;
}
