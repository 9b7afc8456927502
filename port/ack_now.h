/* ack_now.h: sends the ACK lwIP holds back (delayed ACK) for a connection now, through its altcp layers. */
#ifndef POSTERN_ACK_NOW_H
#define POSTERN_ACK_NOW_H

#include "lwip/altcp.h"

void ack_now(struct altcp_pcb *conn);

#endif /* POSTERN_ACK_NOW_H */
