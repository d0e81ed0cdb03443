import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A 4-frame labelled dataset folder at 0.05 x 0.05 mm: subjects s0, s1 train, s2 val, s3
    test (the manifest's split column)."""
    from layerseg.io.dataset import DatasetWriter
    from layerseg.simulate import simulate_frame

    root = tmp_path_factory.mktemp("tiny_ds")
    with DatasetWriter(root) as w:
        for i, split in enumerate(["train", "train", "val", "test"]):
            s = simulate_frame(100 + i, region="cheek", shape=(160, 128), depth_mm=8.0,
                               width_mm=6.4, vary=False)
            w.add(s.frame, f"f{i}", subject_id=f"s{i}", label=s.labels, split=split)
    return root
