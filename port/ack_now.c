/* ack_now.c: sends the ACK lwIP holds back (delayed ACK) for a connection now, through its altcp layers.
 *
 * lwIP acknowledges a lone received segment only on its delayed-ACK tick
 * (tcp_fasttmr, every 250 ms) unless data going out carries the ACK, a second
 * segment arrives, or the window reopens past TCP_WND_UPDATE_THRESHOLD. A
 * sender with one segment in flight (slow start) waits for that ACK. altcp
 * has no call for "acknowledge now", so this reaches the tcp_pcb: postern's
 * TLS layer (port/tls.c) keeps its TCP pcb as inner_conn, and lwIP's
 * altcp_tcp.c keeps the tcp_pcb in the state of the pcbs it marks with
 * altcp_tcp_functions.
 */
#include "ack_now.h"

#include "lwip/tcp.h"

extern const struct altcp_functions altcp_tcp_functions; /* lwIP's altcp_tcp.c */

void ack_now(struct altcp_pcb *conn)
{
  while (conn != NULL && conn->inner_conn != NULL) {
    conn = conn->inner_conn; /* TLS over TCP: the ACK is the TCP pcb's */
  }
  if (conn == NULL || conn->fns != &altcp_tcp_functions || conn->state == NULL) {
    return;
  }
  struct tcp_pcb *tpcb = conn->state;
  tcp_set_flags(tpcb, TF_ACK_NOW);
  /* Inside a recv callback lwIP defers tcp_output() to the end of tcp_input(),
   * which sends the ACK then, with the window the application reopened. */
  tcp_output(tpcb);
}
