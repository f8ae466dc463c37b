"""arboreto's GRNBoost2 and GENIE3 on the data sets `cellwright bench grn` gives ours, timed in
the same run. The manifest (JSON) lists data sets: a cells × genes table (tab-separated, a
`cell` column then one column per gene), a regulator list (one per line), the methods to run
and where to write each method's edges (regulator, target, score). Prints one JSON object on
its last line: per data set and method, the seconds taken.
"""

import argparse
import json
import time

import pandas as pd
from arboreto.algo import genie3, grnboost2
from distributed import Client, LocalCluster


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--manifest", required=True)
    args = a.parse_args()
    with open(args.manifest) as fh:
        manifest = json.load(fh)
    out = {}
    for item in manifest["datasets"]:
        data = pd.read_csv(item["data"], sep="\t", index_col=0)
        with open(item["tfs"]) as fh:
            tfs = [line.strip() for line in fh if line.strip()]
        out[item["name"]] = {}
        for method in item["methods"]:
            algo = {"grnboost2": grnboost2, "genie3": genie3}[method]
            # Its own client per call: two calls on one client with the same seed collide
            # on task keys and get cancelled.
            cluster = LocalCluster(
                n_workers=1,
                threads_per_worker=manifest["threads"],
                processes=False,
                dashboard_address=None,
            )
            client = Client(cluster)
            start = time.perf_counter()
            edges = algo(
                expression_data=data,
                tf_names=tfs,
                client_or_address=client,
                seed=manifest["seed"],
            )
            seconds = time.perf_counter() - start
            client.close()
            cluster.close()
            path = f"{item['out']}.{method}.tsv"
            edges.to_csv(path, sep="\t", index=False, header=["regulator", "target", "score"])
            out[item["name"]][method] = {"seconds": seconds, "edges": path}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
