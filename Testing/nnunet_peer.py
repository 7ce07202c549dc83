"""Test helpers that run the peer implementation: nnU-Net v1's Generic_UNet and v2's nnUNetPredictor.

They build an nnU-Net v2 results folder exactly as nnU-Net's trainer saves one, so the same files
go through ``pasta segment`` and through nnU-Net.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from PASTALib.model.network import PASTA_FULL, PastaUNet, UNetConfig
from PASTALib.model.preprocessing import Normalization, Preprocessing


def v1_generic_unet(config: UNetConfig) -> nn.Module:
    """nnU-Net v1 ``Generic_UNet`` with PASTA's hyper-parameters (PASTATrainer.build_network)."""
    from nnunet.network_architecture.generic_UNet import Generic_UNet

    network = Generic_UNet(
        config.input_channels, config.stage_widths[0], config.num_classes, config.num_pool,
        config.convs_per_stage, 2, nn.Conv3d, nn.InstanceNorm3d, {"eps": 1e-5, "affine": True},
        nn.Dropout3d, {"p": 0, "inplace": True}, nn.LeakyReLU, {"negative_slope": 1e-2, "inplace": True},
        True, False, lambda x: x, None, [list(p) for p in config.pool_kernels],
        [list(k) for k in config.conv_kernels], False, True, True, max(config.stage_widths),
        seg_output_use_bias=False)
    network.do_ds = False
    return network.eval()


def plans_for(prep: Preprocessing, config: UNetConfig) -> dict:
    norm = prep.normalization
    return {
        "dataset_name": "Dataset999_PastaTest",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": list(prep.spacing_zyx),
        "original_median_shape_after_transp": [96, 96, 96],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": list(prep.transpose_forward),
        "transpose_backward": list(prep.transpose_backward),
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres",
            "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2,
            "patch_size": list(prep.patch_size),
            "median_image_size_in_voxels": [96, 96, 96],
            "spacing": list(prep.spacing_zyx),
            "normalization_schemes": ["CTNormalization"],
            "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {"n_stages": config.num_pool + 1, "features_per_stage": list(config.stage_widths),
                                "conv_op": "torch.nn.modules.conv.Conv3d",
                                "kernel_sizes": [list(k) for k in config.conv_kernels],
                                "strides": [[1, 1, 1]] + [list(p) for p in config.pool_kernels],
                                "n_conv_per_stage": [2] * (config.num_pool + 1),
                                "n_conv_per_stage_decoder": [2] * config.num_pool, "conv_bias": True,
                                "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                                "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                                "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
            "batch_dice": False,
        }},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 3000.0, "mean": norm.mean, "median": norm.mean, "min": -1000.0,
            "percentile_00_5": norm.lower, "percentile_99_5": norm.upper, "std": norm.std}},
    }


def write_results_folder(folder: Path, states: list[dict], prep: Preprocessing, config: UNetConfig,
                         class_names: list[str], trainer_name: str = "TotalLesionTrainer_ft",
                         mirror_axes=(0, 1, 2)) -> Path:
    """An nnU-Net v2 results folder as ``nnUNetTrainer.save_checkpoint`` writes it."""
    folder.mkdir(parents=True)
    plans = plans_for(prep, config)
    dataset = {"channel_names": {"0": "CT"}, "labels": {n: i for i, n in enumerate(class_names)},
               "numTraining": 1, "file_ending": ".nii.gz"}
    (folder / "plans.json").write_text(json.dumps(plans, indent=2))
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    for fold, state in enumerate(states):
        (folder / f"fold_{fold}").mkdir()
        torch.save({
            "network_weights": state,
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
            "grad_scaler_state": None,
            "logging": {"mean_fg_dice": [np.float64(0.5)], "ema_fg_dice": [np.float64(0.5)],
                        "train_losses": [np.float32(0.1)]},
            "_best_ema": np.float64(0.5),
            "current_epoch": 500,
            "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": fold,
                          "dataset_json": dataset, "device": torch.device("cuda")},
            "trainer_name": trainer_name,
            "inference_allowed_mirroring_axes": tuple(mirror_axes),
        }, folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder


def full_model_folder(root: Path, trainer_name: str = "TotalLesionTrainer_ft") -> Path:
    """The 240 M-parameter PASTA network with random weights (seed 0), planned at 1 mm with a 128^3 patch like
    the authors' models, as a results folder under ``root`` (the benchmarks time it; no weights ship). A PASTA
    trainer's folder is run with PASTA's standardisation; ``trainer_name="nnUNetTrainer"`` runs it as stored."""
    torch.manual_seed(0)
    state = PastaUNet(PASTA_FULL).state_dict()
    prep = Preprocessing((1.0, 1.0, 1.0), (128, 128, 128), Normalization("ct", 40.0, 60.0, -150.0, 250.0))
    return write_results_folder(root / "full", [state], prep, PASTA_FULL, ["background", "organ", "lesion"],
                                trainer_name=trainer_name)


def nnunet_predictor(folder: Path, states: list[dict], config: UNetConfig, mirror: bool, mirror_axes=(0, 1, 2),
                     device: torch.device = torch.device("cpu")):
    """nnU-Net v2's own predictor for a results folder, with v1 Generic_UNet as the network.

    ``manual_initialization`` is used because stock nnU-Net cannot import PASTA's trainer class
    (``TotalLesionTrainer_ft`` does not exist anywhere, see PASTA_REFERENCE.md).
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = json.loads((folder / "plans.json").read_text())
    dataset = json.loads((folder / "dataset.json").read_text())
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror,
                                perform_everything_on_device=device.type == "cuda", device=device,
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    plans_manager = PlansManager(plans)
    network = v1_generic_unet(config)
    predictor.manual_initialization(network, plans_manager, plans_manager.get_configuration("3d_fullres"),
                                    [dict(s) for s in states], dataset, "TotalLesionTrainer_ft",
                                    tuple(mirror_axes))
    return predictor


def nnunet_predict(folder: Path, states: list[dict], config: UNetConfig, array_zyx: np.ndarray,
                   spacing_zyx, mirror: bool, mirror_axes=(0, 1, 2)) -> np.ndarray:
    """Segment on the CPU with nnU-Net v2's predictor; returns the label array (z, y, x)."""
    predictor = nnunet_predictor(folder, states, config, mirror, mirror_axes)
    return predictor.predict_single_npy_array(array_zyx[None].astype(np.float32),
                                              {"spacing": list(spacing_zyx)}, None, None, False)
