package cache

// InvalidationChannel names the Redis Pub/Sub channel on which a deployment's projector
// announces the tenants whose documents it wrote, and its Query Gateways' in-process caches
// listen: "phx:invalidate:{deployment}". Pub/Sub channels belong to the whole server, not to a
// database number (and a Redis Cluster forwards them to every node), so two deployments that
// share one Redis would drop each other's answers, or keep answers the other's announcements
// were meant to drop, if they shared a channel.
func InvalidationChannel(deployment string) string {
	return "phx:invalidate:{" + deployment + "}"
}
