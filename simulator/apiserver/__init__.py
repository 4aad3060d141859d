"""The simulated cluster served over the Kubernetes HTTP API (`reconciler serve`), so that real
clients (kubectl, helm, the official Python client) work against it unchanged.

    command    `serve`: credentials, cluster, server; signals; the kubeconfig line on stdout
    runtime    the simulated environment, inputs, --state, in-process controllers (a thread)
    certs      CA, serving certificate, bearer token, kubeconfig
    server     HTTP(S): TLS, authentication, bounded bodies, responses, chunked streams
    handlers   one request to one response: health, version, discovery, OpenAPI, the verbs
    routing    paths to group/version/resource/namespace/name/subresource
    resources  the served resource types (built-in tables, CRDs)
    discovery  /api, /apis, resource lists, aggregated discovery v2
    openapi    OpenAPI v3 index and documents, v2
    store      the verbs over InMemoryCluster under one lock: create, update, patch, delete,
               list pages, dry runs (on a scratch cluster)
    patches    JSON merge patch, JSON patch, strategic merge patch
    selectors  label and field selectors
    tables     Table responses (printer columns)
    changes    the watch history, from scans of the cluster's change feed
    watch      watch streams (resourceVersion, bookmarks, initial events, 410 Gone)
    errors     metav1.Status bodies
"""
