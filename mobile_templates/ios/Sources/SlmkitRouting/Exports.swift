// `import SlmkitRouting` gives the routing core too (spec, router, policy, pipeline, cloud engines).
@_exported import SlmkitRoutingCore
