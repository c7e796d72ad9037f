"""Tiny, randomly initialised diffusers pipelines built offline from configs.

:func:`tiny_pipeline` builds a Stable Diffusion 1.x/2.x, SDXL, SD3 or Flux pipeline
whose every component (UNet or transformer, VAE, CLIP/T5 text encoders, tokenizers with
a character-level vocabulary) is a few thousand random parameters: it downloads
nothing and samples in a fraction of a second on a CPU. The images mean nothing; the
pipelines exercise exactly the code paths (conditioning, classifier-free guidance,
VAE decoding, scheduler calls) of the real ones, for tests, documentation and
notebooks. Needs diffusers and transformers (the ``dev`` extra).
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._optional import require
from .parameterizations import PREDICTION_TYPES

__all__ = ["PIPELINE_KINDS", "tiny_pipeline"]

#: The pipelines :func:`tiny_pipeline` builds, by name.
PIPELINE_KINDS = ("stable-diffusion", "stable-diffusion-xl", "stable-diffusion-3", "flux")

_WIDTH = 16  # hidden size of every text encoder
_TOKENS = 16  # CLIP context length


def _clip_tokenizer(transformers: Any) -> Any:
    """A CLIP BPE tokenizer over single characters (no merges), from files written to a temporary folder."""
    chars = list(string.ascii_lowercase + string.digits + ".,!?'-")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({f"{c}</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = Path(folder, "vocab.json"), Path(folder, "merges.txt")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n", encoding="utf-8")
        return transformers.CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=_TOKENS)


def _t5_tokenizer(transformers: Any) -> Any:
    """A T5 (unigram) tokenizer over single characters, built in memory."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase + string.digits + ".,!?'-"]
    return transformers.T5TokenizerFast(vocab=pieces, extra_ids=0)


def _clip_text_encoder(transformers: Any, tokenizer: Any, with_projection: bool) -> Any:
    config = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=_WIDTH,
        intermediate_size=2 * _WIDTH,
        projection_dim=_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
    return cls(config).eval()


def _vae(diffusers: Any, **kwargs: Any) -> Any:
    # two blocks: 2x downsampling, so 16x16 images have 8x8 latents
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
        **kwargs,
    ).eval()


def _unet(diffusers: Any, cross_attention_dim: int, **kwargs: Any) -> Any:
    return diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        attention_head_dim=4,
        cross_attention_dim=cross_attention_dim,
        **kwargs,
    ).eval()


def _vp_scheduler_config(prediction_type: str) -> dict:
    # Stable Diffusion's betas ("scaled_linear", 0.00085 … 0.012, T = 1000)
    return dict(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
    )


def _stable_diffusion(diffusers: Any, transformers: Any, prediction_type: str) -> Any:
    tokenizer = _clip_tokenizer(transformers)
    scheduler = diffusers.DDIMScheduler(
        **_vp_scheduler_config(prediction_type), clip_sample=False, set_alpha_to_one=False, steps_offset=1
    )
    return diffusers.StableDiffusionPipeline(
        vae=_vae(diffusers),
        text_encoder=_clip_text_encoder(transformers, tokenizer, with_projection=False),
        tokenizer=tokenizer,
        unet=_unet(diffusers, cross_attention_dim=_WIDTH),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _stable_diffusion_xl(diffusers: Any, transformers: Any, prediction_type: str) -> Any:
    tokenizer = _clip_tokenizer(transformers)
    time_embed_dim = 8  # SDXL's six micro-conditioning numbers, each embedded in 8 dimensions
    unet = _unet(
        diffusers,
        cross_attention_dim=2 * _WIDTH,  # the two text encoders' hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        projection_class_embeddings_input_dim=6 * time_embed_dim + _WIDTH,  # + the pooled text embedding
        use_linear_projection=True,
    )
    return diffusers.StableDiffusionXLPipeline(
        vae=_vae(diffusers),
        text_encoder=_clip_text_encoder(transformers, tokenizer, with_projection=False),
        text_encoder_2=_clip_text_encoder(transformers, tokenizer, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=diffusers.EulerDiscreteScheduler(**_vp_scheduler_config(prediction_type)),
    )


def _stable_diffusion_3(diffusers: Any, transformers: Any) -> Any:
    tokenizer = _clip_tokenizer(transformers)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8,
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=2 * _WIDTH,  # the CLIP hidden states, concatenated (no T5 here)
        caption_projection_dim=16,
        pooled_projection_dim=2 * _WIDTH,
    ).eval()
    return diffusers.StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),  # SD3's shift
        vae=_vae(diffusers, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=_clip_text_encoder(transformers, tokenizer, with_projection=True),
        tokenizer=tokenizer,
        text_encoder_2=_clip_text_encoder(transformers, tokenizer, with_projection=True),
        tokenizer_2=tokenizer,
        text_encoder_3=None,  # SD3 runs without its T5 encoder (zero T5 embeddings)
        tokenizer_3=None,
    )


def _flux(diffusers: Any, transformers: Any) -> Any:
    tokenizer = _clip_tokenizer(transformers)
    tokenizer_2 = _t5_tokenizer(transformers)
    t5 = transformers.T5EncoderModel(
        transformers.T5Config(
            vocab_size=len(tokenizer_2), d_model=_WIDTH, d_kv=8, d_ff=2 * _WIDTH, num_layers=1, num_heads=2
        )
    ).eval()
    transformer = diffusers.FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=_WIDTH,  # T5 hidden states
        pooled_projection_dim=_WIDTH,  # CLIP pooled output
        guidance_embeds=True,  # as FLUX.1-dev: guidance distilled into the model
        axes_dims_rope=(2, 2, 4),
    ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        vae=_vae(diffusers, shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=_clip_text_encoder(transformers, tokenizer, with_projection=False),
        tokenizer=tokenizer,
        text_encoder_2=t5,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def tiny_pipeline(kind: str, *, prediction_type: str | None = None, seed: int = 0) -> Any:
    """A tiny randomly initialised diffusers pipeline, built offline (for tests, docs and notebooks).

    Parameters
    ----------
    kind : {"stable-diffusion", "stable-diffusion-xl", "stable-diffusion-3", "flux"}
        ``StableDiffusionPipeline`` (DDIM config, SD's betas), ``StableDiffusionXLPipeline``
        (Euler config, two CLIP text encoders, micro-conditioning), ``StableDiffusion3Pipeline``
        (flow matching, ``shift=3``, two CLIP encoders and no T5) or ``FluxPipeline`` (flow
        matching with dynamic shifting, CLIP and T5 encoders, guidance-distilled
        transformer). Images are 16×16 pixels (8×8 latents with 4 channels) by default.
    prediction_type : {"epsilon", "v_prediction", "sample"}, optional
        For the Stable Diffusion kinds: what the UNet predicts (the scheduler config's
        ``prediction_type``; default ``"epsilon"``). Flow-matching kinds predict a
        velocity and take none.
    seed : int
        Seed of the random weights (the global torch generator is left as it was).

    Returns
    -------
    diffusers.DiffusionPipeline
        With its progress bar disabled.

    Examples
    --------
    >>> pipe = tiny_pipeline("stable-diffusion")  # doctest: +SKIP
    >>> pipe("a cat", num_inference_steps=5, height=16, width=16).images[0].size  # doctest: +SKIP
    (16, 16)
    """
    diffusers = require("diffusers", "tiny_pipeline")
    transformers = require("transformers", "tiny_pipeline")
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"kind must be one of {PIPELINE_KINDS}, got {kind!r}")
    if kind in ("stable-diffusion-3", "flux"):
        if prediction_type is not None:
            raise ValueError(f"{kind} is a flow-matching pipeline (velocity prediction); pass no prediction_type")
    elif prediction_type is None:
        prediction_type = "epsilon"
    elif prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "stable-diffusion":
            pipe = _stable_diffusion(diffusers, transformers, prediction_type)
        elif kind == "stable-diffusion-xl":
            pipe = _stable_diffusion_xl(diffusers, transformers, prediction_type)
        elif kind == "stable-diffusion-3":
            pipe = _stable_diffusion_3(diffusers, transformers)
        else:
            pipe = _flux(diffusers, transformers)
    pipe.set_progress_bar_config(disable=True)
    return pipe
