"""ImageDataModule: batch keys, shapes, dtypes, test order, masks binarised after resizing, protocol checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.data.images import ImageDataError, ImageDataModule, read_mask
from fsad.data.images.transforms import resize_mask
from tests.data.images.helpers import box_mask, png, rgb, write_mvtec, write_visa_original


@pytest.fixture
def mvtec(tmp_path):
    root = write_mvtec(tmp_path / "mv", classes=("bottle", "carpet"), n_train=5, n_good=2, defects=("crack",),
                       n_bad=2, size=(12, 10))
    # a 0/1 mask (values a "/ 255 then > 0.5" loader would lose)
    png(root / "carpet" / "ground_truth" / "crack" / "001_mask.png", box_mask((12, 10), (3, 9, 2, 7), value=1),
        mode="L")
    return root


def make(root, **kwargs):
    defaults = dict(dataset="mvtec", image_size=16, crop_size=16, eval_size=16, batch_size=4, eval_batch_size=3)
    dm = ImageDataModule(str(root), **{**defaults, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_setup_attributes_counts_and_test_order(mvtec, caplog):
    dm = make(mvtec)
    assert dm.class_names == ["carpet", "bottle"]  # ADer's MVTec order: textures first
    assert dm.layout_used == "mvtec"
    assert [s.class_name for s in dm.test_samples] == ["carpet"] * 4 + ["bottle"] * 4
    assert [s.image.relative_to(mvtec / "carpet").as_posix() for s in dm.test_samples[:4]] == [
        "test/crack/000.png", "test/crack/001.png", "test/good/000.png", "test/good/001.png"]
    assert len(dm.train_samples) == 10
    row = dm.counts["carpet"]
    assert (row["train_good"], row["test_good"], row["test_anomalous"]) == (5, 2, 2)
    assert row["matches_published"] is False and row["masks"] == 2 and row["masks_class_ids"] == 0
    assert row["masks_levels"] == 0 and row["masks_binary"] == 2  # a 0/1 mask is binary
    assert "val_dataloader" not in vars(type(dm))  # no validation split in this protocol


def test_train_batches_are_seeded_shuffles(mvtec):
    dm = make(mvtec)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "class_id"}
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["class_id"].dtype == torch.int64 and batch["class_id"].shape == (4,)
    first = [int(b.shape[0]) for b in (x["image"] for x in dm.train_dataloader())]
    assert first == [4, 4, 2]  # drop_last off: every training image is used

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return list(loader.sampler)

    assert order(dm.train_dataloader(), 0) == order(make(mvtec).train_dataloader(), 0)
    assert order(dm.train_dataloader(), 0) != order(dm.train_dataloader(), 1)
    assert order(dm.train_dataloader(), 0) != order(make(mvtec, seed=5).train_dataloader(), 0)
    assert sorted(order(dm.train_dataloader(), 3)) == list(range(10))


def test_scoring_batches_keys_dtypes_index_and_masks(mvtec):
    dm = make(mvtec, eval_size=20)
    loaders = dm.scoring_dataloaders()
    assert list(loaders) == ["test"]
    batches = list(loaders["test"])
    keys = {"image", "mask", "label", "index", "class_id"}
    assert all(set(b) == keys for b in batches)
    first = batches[0]
    assert first["image"].shape == (3, 3, 16, 16) and first["image"].dtype == torch.float32
    assert first["mask"].shape == (3, 20, 20) and first["mask"].dtype == torch.bool
    for key in ("label", "index", "class_id"):
        assert first[key].dtype == torch.int64 and first[key].shape == (3,)
    index = torch.cat([b["index"] for b in batches])
    assert index.tolist() == list(range(len(dm.test_samples)))
    labels = torch.cat([b["label"] for b in batches])
    assert labels.tolist() == [s.label for s in dm.test_samples]
    class_id = torch.cat([b["class_id"] for b in batches])
    assert class_id.tolist() == [dm.class_names.index(s.class_name) for s in dm.test_samples]
    masks = torch.cat([b["mask"] for b in batches])
    for i, sample in enumerate(dm.test_samples):
        if sample.mask is None:
            assert not masks[i].any()
        else:  # resized bilinearly as float at 20 / 16 * 16 = 20, then >= 0.5
            expected = resize_mask(read_mask(sample.mask), 20, 20)
            assert masks[i].any() and torch.equal(masks[i], torch.from_numpy(expected))


def test_visa_class_id_masks_survive_and_are_counted(tmp_path):
    root = write_visa_original(tmp_path / "visa", classes=("pcb1",), n_train=2, n_good=1, n_bad=2, class_id=3)
    dm = make(root, dataset="visa")
    assert dm.layout_used == "visa" and dm.counts["pcb1"]["masks_class_ids"] == 2
    masks = torch.cat([b["mask"] for b in dm.scoring_dataloaders()["test"]])
    assert masks[:2].flatten(1).any(1).all() and not masks[2].any()


def test_one_model_per_class_needs_exactly_one_class(mvtec):
    with pytest.raises(ValueError, match=r"data.classes must name exactly one class .*-m data.classes=\[bottle\]"):
        ImageDataModule(str(mvtec), "mvtec", multi_class=False)
    with pytest.raises(ValueError, match="exactly one class"):
        ImageDataModule(str(mvtec), "mvtec", multi_class=False, classes=["bottle", "carpet"])
    dm = make(mvtec, multi_class=False, classes=["bottle"])
    assert dm.class_names == ["bottle"] and {s.class_name for s in dm.test_samples} == {"bottle"}
    with pytest.raises(ImageDataError, match=r"unknown class\(es\) \['screw'\]; available classes: carpet, bottle"):
        make(mvtec, multi_class=False, classes="screw")


def test_inputs_are_checked_before_training(mvtec, tmp_path):
    with pytest.raises(ValueError, match="data.dataset must be one of"):
        ImageDataModule(str(mvtec), "coco")
    with pytest.raises(ValueError, match="crop_size"):
        ImageDataModule(str(mvtec), "mvtec", image_size=128, crop_size=256)
    with pytest.raises(ValueError, match="data.synthetic is only used with data.dataset=synthetic"):
        ImageDataModule(str(mvtec), "mvtec", synthetic={"size": 32})
    with pytest.raises(ValueError, match="custom dataset has no public archive"):
        ImageDataModule(str(mvtec), "custom", download=True)
    (mvtec / "bottle" / "ground_truth" / "crack" / "000_mask.png").unlink()
    with pytest.raises(ImageDataError, match=r"test/crack/000.png: anomalous test image without a mask"):
        make(mvtec)
    dm = ImageDataModule(str(mvtec), "mvtec")
    with pytest.raises(RuntimeError, match="call setup"):
        dm.train_dataloader()


def test_synthetic_dataset_is_written_into_root_and_batches(tmp_path):
    root = tmp_path / "synthetic_images"
    dm = make(root, dataset="synthetic", synthetic={"classes": ["grain", "disc"], "n_train": 2, "n_test_good": 1,
                                                     "n_test_bad": 2, "size": 32}, image_size=32, crop_size=32,
              eval_size=32)
    assert (root / "synthetic.json").is_file() and dm.class_names == ["disc", "grain"]
    batch = next(iter(dm.scoring_dataloaders()["test"]))
    assert batch["image"].shape == (3, 3, 32, 32)
    assert torch.equal(batch["mask"].flatten(1).any(1), batch["label"].bool())  # tiny defect kept at 32


def test_img14_mixed_sizes_and_modes_in_one_class_batch_at_256(tmp_path):
    root = tmp_path / "custom"
    for i, (w, h) in enumerate([(40, 30), (32, 32), (30, 45)]):
        png(root / "part" / "train" / "good" / f"{i}.png", np.full((h, w, 3), 50 * (i + 1), np.uint8))
    png(root / "part" / "test" / "good" / "g.png", np.full((9, 7), 3, np.uint8), mode="L")
    png(root / "part" / "test" / "dent" / "d.png", rgb(5, (20, 10)))
    png(root / "part" / "ground_truth" / "dent" / "d_mask.png", box_mask((20, 10), (0, 4, 0, 4)), mode="L")
    dm = ImageDataModule(str(root), "custom", batch_size=3)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape == (3, 3, 256, 256)
    assert next(iter(dm.scoring_dataloaders()["test"]))["mask"].shape == (2, 256, 256)


def test_a_bad_root_or_synthetic_setting_is_named(tmp_path):
    """Each used to surface as a bare OS or type error from inside Lightning's prepare_data."""
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="data.root=.*afile is a file, not a folder"):
        ImageDataModule(str(a_file), "synthetic")
    with pytest.raises(ValueError, match="data.root must be a folder path, got None"):
        ImageDataModule(None, "synthetic")
    blocked = ImageDataModule(str(a_file / "below"), "synthetic", synthetic={"size": 32, "n_train": 1})
    with pytest.raises(ImageDataError, match="data.root=.*below: the synthetic benchmark cannot be written there"):
        blocked.prepare_data()
    tiny = ImageDataModule(str(tmp_path / "s"), "synthetic", synthetic={"size": 8})
    with pytest.raises(ImageDataError, match=r"data.synthetic \{'size': 8\}: .*32"):
        tiny.prepare_data()
